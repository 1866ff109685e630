"""The bundled real-people model on real photos it never saw (regression guards, not the
benchmark: benchmarks/real_accuracy.py measures it on all of LSP test and COCO val)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.evaluate import torso_pck_hits
from edgepose.bundled import REAL_MODEL

ROOT = Path(__file__).resolve().parents[1]
LSP = ROOT / "tests" / "assets" / "lsp"
# A few points under what the shipped model measured on these images (see the model card).
FLOOR_LSP12 = 0.75  # measured 0.83 (heatmap-128 on the MoveNet trunk; 12 photos, 144 joints; was 0.63)
FLOOR_DEMO = 0.75  # measured 0.83 (the 8 slideshow photos, re-acquisition frames excluded; was 0.63)

pytestmark = pytest.mark.skipif(not REAL_MODEL.is_file(),
                                reason=f"{REAL_MODEL.name} is not bundled in this checkout")


def pck_torso(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.2) -> tuple[int, int]:
    """(hits, labelled joints) of one person: LSP's PCK with the torso normaliser."""
    hits, counts = torso_pck_hits(pred[None], gt[None], alpha)
    return int(hits.sum()), int(counts.sum())


def test_bundled_model_finds_real_people_in_lsp_test_images():
    from edgepose.app.api import load
    from edgepose.data.lsp import coco_keypoints, joint_box

    rows = json.loads((LSP / "joints_subset.json").read_text())
    model = load(REAL_MODEL, threads=1)
    hits = total = 0
    for name, joints in rows.items():
        img = cv2.imread(str(LSP / name))
        gt = coco_keypoints(np.asarray(joints), "lsp")
        box = joint_box(gt, img.shape[1], img.shape[0])
        pose = model.predict(img, boxes=[box])[0]
        h, n = pck_torso(pose.keypoints, gt)
        hits, total = hits + h, total + n
    pck = hits / total
    assert pck >= FLOOR_LSP12, f"PCK@0.2 (torso) {pck:.3f} on the 12 committed LSP test photos"


def test_demo_on_real_photos_lands_near_their_labels(tmp_path):
    """`edgepose demo` (the real-people slideshow): N frames saved and logged, and the
    keypoints it draws are near each photo's labels."""
    from edgepose.app.cli import main
    from edgepose.realtime.runner import RunOptions, run_app
    from edgepose.realtime.pipeline import PipelineOptions
    from edgepose.realtime.sources import SourceOptions

    n = 60
    video, log = tmp_path / "demo.mp4", tmp_path / "demo.jsonl"
    assert main(["demo", "--headless", "--frames", str(n), "--save", str(video), "--log",
                 str(log), "--threads", "1", "--quiet"]) == 0
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == n and len(log.read_text().splitlines()) == n
    seen = []
    opts = RunOptions(model=str(REAL_MODEL), source="demo", headless=True, threads=1,
                      quiet=True, source_opts=SourceOptions(demo_fps=0),
                      pipeline=PipelineOptions(frames=8 * 30,
                                               on_frame=lambda f, p: seen.append((f, p))))
    opts.capture.every_frame = True
    run_app(opts)
    hits = total = 0
    for frame, people in seen:
        if int(frame.id) % 30 < 10:
            continue  # a new photo: the tracker re-acquires the person
        assert people, f"no person on frame {frame.id}"
        t = frame.truth
        gt = np.concatenate([t["keypoints"], t["visible"][:, None]], axis=1)
        h, n_ = pck_torso(people[0].keypoints, gt)
        hits, total = hits + h, total + n_
    pck = hits / total
    assert pck >= FLOOR_DEMO, f"demo keypoints PCK@0.2 (torso) {pck:.3f} vs the photos' labels"

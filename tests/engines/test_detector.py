"""The bundled person detector (NanoDet ONNX) on committed real multi-person photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgepose.engines.detection import iou_matrix
from edgepose.engines.detector import DEFAULT_DETECTOR, META_KEY, Detector
from edgepose.errors import EngineError

MULTI = Path(__file__).resolve().parents[1] / "assets" / "multi"


@pytest.fixture(scope="module")
def detector():
    return Detector(threads=1)


def gt_boxes(image_id: int, min_kps: int = 5) -> np.ndarray:
    d = json.loads((MULTI / "person_keypoints.json").read_text())
    b = np.array([a["bbox"] for a in d["annotations"] if a["image_id"] == image_id
                  and not a["iscrowd"] and a["num_keypoints"] >= min_kps]).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


@pytest.mark.parametrize("name,people", [("000000214753.jpg", 2), ("000000252219.jpg", 3),
                                         ("000000000790.jpg", 4)])
def test_finds_the_labelled_people(detector, name, people):
    img = cv2.imread(str(MULTI / name))
    boxes, scores = detector(img)
    assert boxes.shape[1] == 4 and np.all(np.diff(scores) <= 0), "best first"
    assert np.all(boxes[:, 2:] > 0) and np.all(boxes[:, 0] >= 0)
    assert np.all(boxes[:, 0] + boxes[:, 2] <= img.shape[1] + 1e-6)
    p = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    gt = gt_boxes(int(name[:-4]))
    assert len(gt) == people
    found = (iou_matrix(gt, p).max(axis=1) >= 0.5).sum()
    assert found == people, f"{name}: found {found} of {people} people at IoU 0.5"
    assert len(boxes) <= people + 2, f"{name}: {len(boxes)} detections for {people} people"


def test_no_people_no_boxes(detector):
    boxes, scores = detector(np.full((480, 640, 3), 127, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_the_file_carries_its_settings_and_licence():
    meta = json.loads({p.key: p.value for p in onnx.load(str(DEFAULT_DETECTOR)).metadata_props}
                      [META_KEY])
    assert meta["licence"] == "Apache-2.0" and "human-models" in meta["source"]
    assert meta["input_size"] == [416, 416] and meta["strides"] == [8, 16, 32]
    g = onnx.load(str(DEFAULT_DETECTOR)).graph
    ops = {n.op_type for n in g.node}
    assert not ops & {"ScatterND", "Expand", "TopK", "NonMaxSuppression"}, ops


def test_bad_detector_files_are_one_clear_error(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        Detector(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not onnx")
    with pytest.raises(EngineError, match="bad.onnx: not a readable ONNX detector"):
        Detector(bad)
    model = onnx.load(str(DEFAULT_DETECTOR))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(EngineError, match="no 'edgepose_detector' metadata"):
        Detector(bare)


def test_detector_graph_passes_the_tensorrt_check():
    from edgepose.engines.trt_compat import check_onnx_file

    report = check_onnx_file(DEFAULT_DETECTOR)
    assert report.ok, report.format()


def test_multi_with_nobody_keeps_running_and_logs_zero_people(tmp_path):
    import cv2 as cv

    from edgepose.app.cli import main

    video = tmp_path / "empty.avi"
    w = cv.VideoWriter(str(video), cv.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for _ in range(5):
        w.write(np.full((240, 320, 3), 60, np.uint8))
    w.release()
    log = tmp_path / "log.jsonl"
    assert main(["run", "--source", str(video), "--multi", "--headless", "--log", str(log),
                 "--quiet", "--threads", "1"]) == 0
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(recs) == 5 and all(r["people"] == 0 for r in recs)

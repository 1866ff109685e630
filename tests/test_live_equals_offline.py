"""Issue 31: `edgepose run --multi` and `edgepose predict --multi` see the same people.

A committed multi-person photo as a video; the first frame as the decoder returns it is
saved losslessly (PNG) for `predict`. Every person the live tracker shows on frame 0 is a
person of `predict --multi` with the same box, raw keypoints within 1 px and the same
person score (box score x joint score), and the keypoint log carries those scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgepose.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "assets" / "multi" / "000000000790.jpg"


def test_live_multi_first_frame_equals_predict_multi(tmp_path):
    img = cv2.imread(str(PHOTO))
    video = tmp_path / "still.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, img.shape[1::-1])
    for _ in range(3):
        w.write(img)
    w.release()
    ok, first = cv2.VideoCapture(str(video)).read()
    assert ok
    frame_png = tmp_path / "frame0.png"
    cv2.imwrite(str(frame_png), first)
    kp = tmp_path / "kp.jsonl"
    assert main(["run", "--source", str(video), "--multi", "--headless", "--quiet",
                 "--no-smooth", "--threads", "1", "--keypoints", str(kp), "--frames", "1"]) == 0
    live = json.loads(kp.read_text().splitlines()[0])["people"]
    out = tmp_path / "r.json"
    assert main(["predict", str(frame_png), "--multi", "--threads", "1", "--out", str(out),
                 "--no-progress"]) == 0
    offline = json.loads(out.read_text())
    assert len(live) >= 2 and len(offline) >= len(live)
    for p in live:
        q = min(offline, key=lambda r: np.abs(np.subtract(r["bbox"], p["box"])).max())
        assert np.abs(np.subtract(q["bbox"], p["box"])).max() < 0.02, (p["box"], q["bbox"])
        raw = np.asarray(p["raw"])
        want = np.asarray(q["keypoints"]).reshape(-1, 3)[:, :2]
        assert np.abs(raw - want).max() < 1.0, np.abs(raw - want).max()
        assert "box_score" in p and abs(p["score"] - q["score"]) < 1e-3, (p["score"], q["score"])

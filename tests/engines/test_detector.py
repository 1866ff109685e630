"""The bundled person detector (NanoDet ONNX) on committed real multi-person photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgepose.engines.detection import iou_matrix
from edgepose.engines.detector import (DEFAULT_DETECTOR, META_KEY, Detector, input_plan,
                                       static_copy)
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
    assert meta["resize"] == "keep_aspect" and meta["long_side"] == 416
    assert meta["crop_padding"] == 1.1 and meta["offline_threshold"] == 0.2
    assert meta["score_threshold"] == 0.35  # live tracking: a false box is a false track
    g = onnx.load(str(DEFAULT_DETECTOR)).graph
    ops = {n.op_type for n in g.node}
    assert not ops & {"ScatterND", "Expand", "TopK", "NonMaxSuppression"}, ops


def test_bad_detector_files_are_one_clear_error(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        Detector(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not onnx")
    with pytest.raises(EngineError, match="bad.onnx: ONNX Runtime cannot load this file as a person detector"):
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


def test_input_plan_keeps_the_aspect_ratio():
    # free input: the longer side to 416, both sides multiples of 32
    (ih, iw), (rh, rw), (sx, sy) = input_plan((480, 640), "keep_aspect", 416)
    assert (ih, iw) == (rh, rw) == (320, 416) and sx == 416 / 640 and sy == 320 / 480
    assert input_plan((1080, 1920), "keep_aspect", 320)[0] == (192, 320)
    assert input_plan((2000, 10), "keep_aspect", 416)[0] == (416, 32)  # never below 32
    # fixed input: letterboxed (one scale, padded right / bottom)
    (ih, iw), (rh, rw), (sx, sy) = input_plan((480, 640), "keep_aspect", 416, (416, 416))
    assert (ih, iw) == (416, 416) and (rh, rw) == (312, 416) and sx == sy == 416 / 640  # exact here
    # old files: stretched
    assert input_plan((480, 640), "stretch", 416, (416, 416))[2] == (416 / 640, 416 / 480)


def test_a_free_input_size_runs_the_frame_at_its_own_aspect(detector):
    img = cv2.imread(str(MULTI / "000000252219.jpg"))
    x, input_hw, _ = detector.letterbox(img)
    h, w = img.shape[:2]
    assert x.shape == (1, 3, *input_hw) and max(input_hw) == 416
    assert abs(input_hw[0] / input_hw[1] - h / w) < 32 / 416
    # the boxes are the same people at another size, within a few pixels of each other
    big, _ = Detector(threads=1, size=640)(img)
    small, _ = detector(img)
    p = lambda b: np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)  # noqa: E731
    assert (iou_matrix(p(small), p(big)).max(axis=1) >= 0.7).sum() >= 3


def test_a_fixed_input_copy_letterboxes_and_finds_the_same_people(detector, tmp_path):
    static = tmp_path / "static.onnx"
    static_copy(DEFAULT_DETECTOR, static, (416, 416))
    fixed = Detector(static, threads=1)
    assert fixed.fixed_hw == (416, 416) and detector.fixed_hw is None
    img = cv2.imread(str(MULTI / "000000252219.jpg"))
    x, _, (sx, sy) = fixed.letterbox(img)
    assert abs(sx - sy) < 2 / 416 and x.shape == (1, 3, 416, 416)  # one scale, rounded
    rows = int(round(img.shape[0] * sx))
    assert np.all(x[0, :, rows + 1:, :] == 0), "padding is the mean colour (0 after normalising)"
    a, _ = fixed(img)
    b, _ = detector(img)
    p = lambda q: np.concatenate([q[:, :2], q[:, :2] + q[:, 2:]], axis=1)  # noqa: E731
    gt = gt_boxes(252219)
    assert np.all(iou_matrix(gt, p(a)).max(axis=1) >= 0.5)
    assert np.all(iou_matrix(gt, p(b)).max(axis=1) >= 0.5)
    with pytest.raises(EngineError, match="input is fixed"):
        Detector(static, threads=1, size=320)


def test_a_size_that_is_not_a_multiple_of_32_is_refused():
    with pytest.raises(EngineError, match="multiple of 32"):
        Detector(threads=1, size=400)

"""The calibration stream feeds exactly the model's own preprocessing, and says why not."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from edgepose.errors import CalibrationError
from edgepose.calibration.stream import CalibrationStream, StreamConfig
from edgepose.engines.meta_io import read_meta
from edgepose.errors import DataError
from edgepose.preprocess import preprocess

from calib_helpers import tiny_meta, write_images


def cfg(**kw) -> StreamConfig:
    return StreamConfig(**{"progress": False, "min_count": 4, **kw})


def test_folder_stream_equals_realtime_whole_frame_input(image_dir):
    """A folder image's tensor is the one the realtime app feeds for a whole frame."""
    from edgepose.coords import whole_image_box
    from edgepose.topdown import crop_people, infer
    from edgepose.realtime.tracking import PersonTracker, TrackOptions

    meta = tiny_meta()
    stream = CalibrationStream(image_dir, meta, cfg(count=5, batch=5))
    (batch,) = list(stream)
    assert batch.shape == (5, 3, 32, 32) and batch.dtype == np.float32, batch.shape
    fed = []

    class Recorder:  # a backend that keeps what it is given
        def __call__(self, x):
            fed.append(x.copy())
            return {"coords": np.zeros((len(x), meta.num_joints, 2), np.float32),
                    "scores": np.zeros((len(x), meta.num_joints), np.float32)}

    for i, sample in enumerate(stream.set.samples):
        img = cv2.imread(sample.path)
        h, w = img.shape[:2]
        (track,) = PersonTracker(TrackOptions(reacquire=False)).boxes(img)  # no pose yet
        infer(Recorder(), crop_people(meta, img, [track.box], [track.padding])[0])
        np.testing.assert_array_equal(batch[i], fed[-1][0])
        box, padding = whole_image_box(w, h)
        ref, _ = preprocess(img, box, meta, padding=padding)
        np.testing.assert_array_equal(batch[i], ref)


def test_coco_stream_equals_preprocess_and_eval_dataset(synth_coco):
    """COCO person crops match preprocess(image, bbox) and the evaluation dataset's input."""
    meta = tiny_meta((64, 48))
    stream = CalibrationStream(synth_coco.val_json, meta, cfg(count=6, batch=3, seed=3))
    batches = list(stream)
    assert [b.shape for b in batches] == [(3, 3, 64, 48)] * 2, [b.shape for b in batches]
    flat = np.concatenate(batches)
    for x, s in zip(flat, stream.set.samples):
        ref, _ = preprocess(cv2.imread(s.path), s.box_xywh, meta, padding=1.25)
        np.testing.assert_array_equal(x, ref)
    coco = pytest.importorskip("edgepose.data.coco")
    ds = coco.CocoKeypoints(str(synth_coco.val_json), str(synth_coco.image_root("val")), meta,
                            train=False, aug=False)
    by_box = {}
    for i in range(len(ds)):
        item = ds[i]
        by_box[tuple(np.round(np.asarray(item["bbox"], dtype=np.float64), 3))] = item["image"]
    for x, s in zip(flat, stream.set.samples):
        key = tuple(np.round(np.asarray(s.box_xywh, dtype=np.float64), 3))
        assert key in by_box, f"stream box {key} not in the evaluation dataset"
        np.testing.assert_allclose(x, np.asarray(by_box[key]), atol=1e-6)


def test_selection_is_seeded(image_dir):
    meta = tiny_meta()
    a = CalibrationStream(image_dir, meta, cfg(count=8, seed=1)).set.samples
    b = CalibrationStream(image_dir, meta, cfg(count=8, seed=1)).set.samples
    c = CalibrationStream(image_dir, meta, cfg(count=8, seed=2)).set.samples
    assert [s.path for s in a] == [s.path for s in b]
    assert [s.path for s in a] != [s.path for s in c], "another seed should pick other images"
    assert len(a) == 8


def test_video_frames_sampled(tmp_path):
    meta = tiny_meta()
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for i in range(30):
        writer.write(np.full((30, 40, 3), i * 8, np.uint8))
    writer.release()
    stream = CalibrationStream(path, meta, cfg(count=6, batch=4))
    frames = [s.frame for s in stream.set.samples]
    assert len(frames) == 6 and frames == sorted(frames) and frames[-1] >= 20, frames
    batches = list(stream)
    assert sum(len(b) for b in batches) == 6
    means = np.concatenate(batches).mean(axis=(1, 2, 3))
    assert np.all(np.diff(means) > 0), "sampled frames should come in clip order"


def test_meta_read_from_onnx(tiny_onnx):
    meta = read_meta(tiny_onnx)
    assert meta.backbone == "tiny-test" and meta.input_size == (32, 32)


def test_empty_folder_says_found_and_needed(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CalibrationError, match=r"found 0 images.*notes\.txt.*at least 4"):
        CalibrationStream(tmp_path, tiny_meta(), cfg(count=16))


def test_too_few_images(tmp_path):
    write_images(tmp_path, 3)
    with pytest.raises(CalibrationError, match=r"found 3 images.*at least 4"):
        CalibrationStream(tmp_path, tiny_meta(), cfg(count=16))


def test_unreadable_images_named(tmp_path, image_dir):
    folder = tmp_path / "mixed"
    shutil.copytree(image_dir, folder)
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    stream = CalibrationStream(folder, tiny_meta(), cfg(count=100, batch=5))
    with pytest.warns(UserWarning, match="broken.jpg"):
        n = sum(len(b) for b in stream)
    assert n == 24 and len(stream.skipped) == 1 and stream.skipped[0].endswith("broken.jpg")

    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(5):
        (bad / f"fake_{i}.png").write_text("nope")
    with pytest.raises(CalibrationError, match=r"not readable images.*fake_0\.png"):
        list(CalibrationStream(bad, tiny_meta(), cfg(count=5)))


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="not found"):
        CalibrationStream(tmp_path / "missing", tiny_meta(), cfg())
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported calibration source"):
        CalibrationStream(tmp_path / "x.txt", tiny_meta(), cfg())
    (tmp_path / "a.json").write_text(json.dumps({"nope": 1}))
    with pytest.raises(DataError, match="not a COCO annotation file"):
        CalibrationStream(tmp_path / "a.json", tiny_meta(), cfg())

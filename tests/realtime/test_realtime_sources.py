"""--source parsing, the Jetson CSI pipeline string, and clear errors for bad sources."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgepose.errors import SourceError
from edgepose.realtime.sources import (
    SourceOptions, gstreamer_available, jetson_csi_pipeline, open_source, parse_source,
)


@pytest.mark.parametrize("text,kind,target", [
    ("0", "camera", 0),
    ("12", "camera", 12),
    ("demo", "demo", None),
    ("synthetic", "synthetic", None),
    ("clip.mp4", "file", "clip.mp4"),
    ("rtsp://cam.local:554/stream", "stream", "rtsp://cam.local:554/stream"),
    ("https://example.org/live.m3u8", "stream", "https://example.org/live.m3u8"),
    ("videotestsrc ! videoconvert ! appsink", "gstreamer",
     "videotestsrc ! videoconvert ! appsink"),
])
def test_parse_source(text, kind, target):
    spec = parse_source(text)
    assert (spec.kind, spec.target) == (kind, target), spec


def test_jetson_csi_pipeline_string():
    s = jetson_csi_pipeline(sensor_id=1, width=1920, height=1080, fps=60, flip=2)
    assert s.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=(int)1920, height=(int)1080" in s and "framerate=(fraction)60/1" in s
    assert "nvvidconv flip-method=2 ! " in s
    assert "format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR" in s
    assert s.endswith("appsink drop=1 max-buffers=1")
    spec = parse_source("csi:1")
    assert spec.kind == "gstreamer" and "sensor-id=1" in spec.target


def test_missing_camera_index_names_it():
    with pytest.raises(SourceError, match="camera 57 could not be opened"):
        open_source(parse_source("57"))


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=f"video file {path} not found"):
        open_source(parse_source(str(path)))


def test_unreadable_file_names_it(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="garbage.mp4"):
        src = open_source(parse_source(str(path)))
        try:  # some OpenCV builds open anything and fail on the first read instead
            src.read()
        finally:
            src.release()


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_gstreamer_without_support_is_a_clear_error():
    with pytest.raises(SourceError, match="without GStreamer"):
        open_source(parse_source("videotestsrc ! videoconvert ! appsink"))


def test_file_source_reads_then_ends(tmp_path):
    path = tmp_path / "three.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(3):
        w.write(np.full((48, 64, 3), 80 * i, np.uint8))
    w.release()
    src = open_source(parse_source(str(path)))
    frames = [src.read() for _ in range(3)]
    assert all(f is not None and f.shape == (48, 64, 3) for f in frames)
    assert src.read() is None, "end of file must read as None, not an error"
    assert not src.live and src.fps == pytest.approx(10, abs=0.5)
    src.release()


def test_people_slideshow_maps_the_labels_into_the_frame():
    """``--source demo``: the bundled real LSP photos, letterboxed; the truth is each
    photo's labels moved by the same scale and offset (checked against people.json)."""
    import json

    from edgepose import ASSETS

    data = json.loads((ASSETS / "people" / "people.json").read_text())
    src = open_source(parse_source("demo"),
                      SourceOptions(demo_size=(320, 240), demo_fps=0, demo_frames=31))
    frames = [src.read() for _ in range(31)]
    assert src.read() is None
    assert "real-people slideshow" in src.name
    first = src.slides[0][1]
    im, ann = data["images"][0], data["annotations"][0]
    k = np.asarray(ann["keypoints"]).reshape(17, 3)
    s = min(320 / im["width"], 240 / im["height"])
    lab = k[:, 2] > 0
    want = (k[lab, :2] + 0.5) * s - 0.5 + [(320 - round(im["width"] * s)) // 2,
                                           (240 - round(im["height"] * s)) // 2]
    np.testing.assert_allclose(first["keypoints"][lab], want, atol=s / 2 + 0.5)
    assert int(first["visible"].sum()) == 12, "LSP labels the 12 limb joints"
    assert np.array_equal(frames[0], frames[29]), "one photo is held for a second (30 frames)"
    assert not np.array_equal(frames[0], frames[30]), "then the next photo"


def test_demo_source_gives_truth_and_ends():
    src = open_source(parse_source("synthetic"),
                      SourceOptions(demo_size=(160, 120), demo_fps=0, demo_frames=3))
    for _ in range(3):
        img = src.read()
        assert img.shape == (120, 160, 3) and img.dtype == np.uint8
        kps = src.truth["keypoints"]
        assert kps.shape == (17, 2) and np.isfinite(kps).all()
    assert src.read() is None


def test_realtime_file_is_read_at_its_own_frame_rate(tmp_path):
    """--realtime: a 20 FPS file hands frame i over no earlier than i / 20 s (a lower
    bound, so a slow machine cannot fail it); without it the file is read at once."""
    import time

    from edgepose.realtime.sources import SourceOptions

    path = tmp_path / "twenty.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48))
    for i in range(10):
        w.write(np.full((48, 64, 3), 20 * i, np.uint8))
    w.release()
    src = open_source(parse_source(str(path)), SourceOptions(pace_files=True))
    t0 = time.perf_counter()
    n = 0
    while src.read() is not None:
        n += 1
        assert time.perf_counter() - t0 >= (n - 1) / 20 - 1e-3
    assert n == 10 and time.perf_counter() - t0 >= 9 / 20
    src.release()
    fast = open_source(parse_source(str(path)))
    assert not fast.pace and src.pace
    fast.release()

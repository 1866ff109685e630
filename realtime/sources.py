"""Frame sources: webcam index, video file, network stream, GStreamer pipeline, demo scene.

``parse_source(text)`` turns a ``--source`` string into a :class:`SourceSpec`;
``open_source(spec, opts)`` opens it and returns an object with

* ``read() -> np.ndarray | None``: the next BGR uint8 (H, W, 3) frame, ``None`` at the end
  of a file / finite demo, and a :class:`SourceError` when a live source fails;
* ``release()``; ``name``; ``live`` (True for cameras and streams: they may reconnect);
  ``fps`` (the source's nominal rate, 0 if unknown); ``truth`` (demo only: the ground
  truth of the frame last read).

The capture thread (``realtime/capture.py``) is the only caller of ``read``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepose.errors import SourceError

STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


@dataclass
class SourceSpec:
    """What ``--source`` named. ``kind``: camera | file | stream | gstreamer | demo (the
    bundled real-people slideshow) | synthetic (the animated synthetic figure)."""

    kind: str
    target: Any
    text: str


@dataclass
class SourceOptions:
    """How to open a source. Sizes in pixels; ``fps`` in frames per second.

    Cameras get ``width``/``height``/``fps`` requested (the driver may pick the nearest
    mode). The demo scene renders ``demo_size`` frames at ``demo_fps`` (0 = as fast as
    possible) and ends after ``demo_frames`` frames (None = never).
    """

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    mjpg: bool = True
    open_timeout_ms: int = 5000
    demo_size: tuple[int, int] = (640, 480)
    demo_fps: float = 30.0
    demo_seed: int = 0
    demo_frames: int | None = None
    demo_cache: int = 0  # > 0: render this many frames once and loop them (benchmarks)
    pace_files: bool = False  # --realtime: a video file is read at its own frame rate


def parse_source(text: str | int) -> SourceSpec:
    """``"0"`` camera 0, ``"demo"``, ``"csi"``/``"csi:1"`` (Jetson CSI camera), a URL, a
    GStreamer pipeline (contains ``!``) or a video file path."""
    s = str(text).strip()
    if not s:
        raise SourceError("empty --source; give a camera index (0), a video file, a URL or 'demo'")
    if s.lower() in ("demo", "synthetic"):
        return SourceSpec(s.lower(), None, s)
    if re.fullmatch(r"\d+", s):
        return SourceSpec("camera", int(s), s)
    m = re.fullmatch(r"csi(?::(\d+))?", s.lower())
    if m:
        return SourceSpec("gstreamer", jetson_csi_pipeline(int(m.group(1) or 0)), s)
    if s.lower().startswith(STREAM_PREFIXES):
        return SourceSpec("stream", s, s)
    if "!" in s:
        return SourceSpec("gstreamer", s, s)
    return SourceSpec("file", s, s)


def jetson_csi_pipeline(
    sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0
) -> str:
    """GStreamer pipeline string for a Jetson CSI camera (Argus) ending in a BGR appsink.

    ``flip`` is nvvidconv's flip-method (0 none, 2 rotate 180, 4 horizontal, 6 vertical).
    ``drop=1 max-buffers=1`` keeps only the newest frame inside GStreamer as well.
    """
    return (
        f"nvarguscamerasrc sensor-id={int(sensor_id)} ! "
        f"video/x-raw(memory:NVMM), width=(int){int(width)}, height=(int){int(height)}, "
        f"format=(string)NV12, framerate=(fraction){int(fps)}/1 ! "
        f"nvvidconv flip-method={int(flip)} ! "
        f"video/x-raw, width=(int){int(width)}, height=(int){int(height)}, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! appsink drop=1 max-buffers=1"
    )


def gstreamer_available() -> bool:
    """Whether the installed OpenCV was built with GStreamer (``GStreamer: YES``)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1].upper()
    return False


class CvSource:
    """A ``cv2.VideoCapture`` (camera, file, stream or GStreamer pipeline)."""

    def __init__(self, cap, name: str, live: bool, pace: bool = False):
        import cv2

        self.cap = cap
        self.name = name
        self.live = live
        self.truth: dict | None = None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else 0.0
        # a file read like a camera (--realtime): frame i is handed over at i / fps
        self.pace = pace and not live and self.fps > 0
        self._frames = 0
        self._t0: float | None = None
        # a file's frames carry their time in the video (s), which smoothing and the
        # keypoint log use instead of when they were processed; live sources: None
        self.t_media: float | None = None

    def read(self) -> np.ndarray | None:
        if self.pace:
            now = time.perf_counter()
            if self._t0 is None:
                self._t0 = now
            delay = self._t0 + self._frames / self.fps - now
            if delay > 0:
                time.sleep(delay)
        ok, frame = self.cap.read()
        if ok and frame is not None:
            if not self.live:
                self.t_media = self._frames / (self.fps or 30.0)
            self._frames += 1
            return frame
        if self.live:
            raise SourceError(f"{self.name}: no frame could be read (disconnected or stalled?)")
        if self._frames == 0:
            raise SourceError(
                f"{self.name}: no frame could be decoded; the file may be corrupt or in a "
                "format this OpenCV cannot read"
            )
        return None  # end of file

    def release(self) -> None:
        self.cap.release()


class PacedSource:
    """A finite-or-endless rendered source paced in time (the demo sources): frame i shows
    ``_render(i)`` at ``t = i / fps`` (``fps`` 30 when running unpaced), so what is shown
    does not depend on the machine's speed; ``truth`` is that frame's ground truth:
    ``keypoints`` (17, 2) px, ``visible`` (17,), ``bbox`` xywh."""

    live = False

    def __init__(self, opts: SourceOptions):
        self.pace = float(opts.demo_fps or 0.0)
        self.fps = self.pace if self.pace > 0 else 30.0
        self.limit = opts.demo_frames
        self.truth: dict | None = None
        self.t_media: float | None = None
        self._i = 0
        self._t0: float | None = None
        self._cache = [self._render(i) for i in range(int(opts.demo_cache or 0))]

    def _render(self, i: int) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        if self.limit is not None and self._i >= self.limit:
            return None
        if self._t0 is None:
            self._t0 = time.perf_counter()
        if self.pace > 0:
            delay = self._t0 + self._i / self.pace - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        if self._cache:
            image, self.truth = self._cache[self._i % len(self._cache)]
            image = image.copy()  # the renderer draws on it
        else:
            image, self.truth = self._render(self._i)
        # the scene's own clock (frame i is at i / fps): smoothing and logs then do not
        # depend on how fast this machine renders and runs the model
        self.t_media = self._i / self.fps
        self._i += 1
        return image

    def release(self) -> None:
        pass


class DemoSource(PacedSource):
    """The animated synthetic figure (``edgepose.data.synthetic.DemoScene``;
    ``--source synthetic``): exact ground truth for every frame."""

    def __init__(self, opts: SourceOptions):
        from edgepose.data.synthetic import DemoScene

        w, h = opts.demo_size
        self.scene = DemoScene(int(w), int(h), seed=int(opts.demo_seed))
        self.name = f"synthetic scene {w}x{h}"
        super().__init__(opts)

    def _render(self, i: int) -> tuple[np.ndarray, dict]:
        image, kps, vis, bbox = self.scene.frame(i / self.fps)
        return image, {"keypoints": np.asarray(kps), "visible": np.asarray(vis), "bbox": bbox}


class PeopleSlideshow(PacedSource):
    """Real people: the bundled LSP test photos (``edgepose/assets/people``, CC BY 2.0),
    each letterboxed onto a ``demo_size`` frame and shown for ``hold_s`` seconds, paced
    like the synthetic scene. ``truth`` maps the photo's labels into the frame (12 limb
    joints labelled; LSP has no face joints).
    """

    hold_s = 1.0

    def __init__(self, opts: SourceOptions):
        import cv2

        from edgepose.bundled import ASSETS
        from edgepose.data.files import read_json

        folder = ASSETS / "people"
        data = read_json(folder / "people.json", "demo people file")
        anns = {a["image_id"]: a for a in data["annotations"]}
        w, h = (int(v) for v in opts.demo_size)
        self.slides = []
        for im in data["images"]:
            img = cv2.imread(str(folder / im["file_name"]))
            if img is None or im["id"] not in anns:
                raise SourceError(f"{folder / im['file_name']}: demo image missing; reinstall")
            s = min(w / img.shape[1], h / img.shape[0])
            nw, nh = round(img.shape[1] * s), round(img.shape[0] * s)
            ox, oy = (w - nw) // 2, (h - nh) // 2
            frame = np.zeros((h, w, 3), np.uint8)
            frame[oy:oy + nh, ox:ox + nw] = cv2.resize(img, (nw, nh),
                                                       interpolation=cv2.INTER_LINEAR)
            k = np.asarray(anns[im["id"]]["keypoints"], np.float64).reshape(-1, 3)
            sx, sy = nw / img.shape[1], nh / img.shape[0]  # pixel centres: (x + .5) s - .5
            kps = np.stack([(k[:, 0] + 0.5) * sx - 0.5 + ox, (k[:, 1] + 0.5) * sy - 0.5 + oy], 1)
            bx, by, bw, bh = anns[im["id"]]["bbox"]
            self.slides.append((frame, {"keypoints": kps, "visible": (k[:, 2] > 0).astype(float),
                                        "bbox": [bx * sx + ox, by * sy + oy, bw * sx, bh * sy],
                                        "file_name": im["file_name"]}))
        self.name = f"real-people slideshow ({len(self.slides)} LSP test photos) {w}x{h}"
        super().__init__(opts)

    def _render(self, i: int) -> tuple[np.ndarray, dict]:
        frame, truth = self.slides[int(i / (self.fps * self.hold_s)) % len(self.slides)]
        return frame.copy(), truth


def _quiet_opencv(cv2) -> None:
    """OpenCV prints its own WARN lines when a camera or file will not open; our SourceError
    says it once and clearly, so keep OpenCV to real errors unless the user asked for more."""
    import os

    if "OPENCV_LOG_LEVEL" not in os.environ and hasattr(cv2, "utils"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def open_source(spec: SourceSpec, opts: SourceOptions | None = None):
    """Open what ``spec`` names; raises :class:`SourceError` naming it when it cannot."""
    import cv2

    _quiet_opencv(cv2)
    opts = opts or SourceOptions()
    if spec.kind == "demo":
        return PeopleSlideshow(opts)
    if spec.kind == "synthetic":
        return DemoSource(opts)
    if spec.kind == "camera":
        cap = cv2.VideoCapture(spec.target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"camera {spec.target} could not be opened; check it is connected and not in "
                "use by another program, or try another index (--source 1)"
            )
        _configure_camera(cap, opts)
        return CvSource(cap, f"camera {spec.target}", live=True)
    if spec.kind == "stream":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, opts.open_timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, opts.open_timeout_ms]
        cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"stream {spec.target} could not be opened; check the URL, the network and "
                "that the server is running"
            )
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return CvSource(cap, f"stream {spec.target}", live=True)
    if spec.kind == "gstreamer":
        if not gstreamer_available():
            raise SourceError(
                f"GStreamer pipeline given ({spec.text[:60]}...) but this OpenCV "
                f"({cv2.__version__}) was built without GStreamer; install an OpenCV with "
                "GStreamer (on Jetson: JetPack's python3-opencv, not the pip wheel)"
            )
        cap = cv2.VideoCapture(spec.target, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"GStreamer pipeline could not be started: {spec.target}")
        return CvSource(cap, "gstreamer pipeline", live=True)
    if spec.kind == "file":
        path = str(spec.target)
        if os.path.isdir(path):
            raise SourceError(f"{path} is a folder; edgepose run reads a camera, a video file or "
                              f"a stream (for a folder of images: edgepose predict {path})")
        if not os.path.isfile(path):
            raise SourceError(
                f"video file {path} not found; give an existing file, a camera index (0), "
                "a URL or 'demo'"
            )
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"video file {path} cannot be read; it may be corrupt or in a format this "
                "OpenCV cannot decode"
            )
        return CvSource(cap, f"video file {path}", live=False, pace=opts.pace_files)
    raise SourceError(f"unknown source kind {spec.kind!r}")


def _configure_camera(cap, opts: SourceOptions) -> None:
    """USB camera settings: MJPG (more fps over USB 2), size, fps, a 1-frame driver buffer."""
    import cv2

    if opts.mjpg:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    if opts.width:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(opts.width))
    if opts.height:
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(opts.height))
    if opts.fps:
        cap.set(cv2.CAP_PROP_FPS, float(opts.fps))
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

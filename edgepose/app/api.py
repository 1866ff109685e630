"""The Python API: ``edgepose.load()``, ``model.predict(image)``, ``model.track(source)``.

    import edgepose

    model = edgepose.load()                     # the bundled model, or a .onnx/.engine/.pt
    for pose in model.predict(image_bgr):       # the whole image as one person
        x, y, score = pose["left_wrist"]
    people = model.predict(image_bgr, detector=True)   # every person (= predict --multi)
    for frame, poses in model.track(0):         # the live pipeline of `edgepose run`
        model.draw(frame, poses)                # frames come clean; drawing is opt-in

``predict``, ``edgepose predict`` and the live pipeline share one top-down path
(:mod:`edgepose.topdown`): given boxes padded by ``CROP_PADDING``, detector boxes by the
detector file's own padding and ranked by box score x joint score with OKS NMS, no box
meaning the whole image by :func:`edgepose.coords.whole_image_box`; every crop of the call
in one backend batch, the keypoints mapped back to image pixels. ``track`` runs the real
pipeline (capture thread, newest frame, tracking, One Euro smoothing) in the background and
yields each frame, as captured, with its people; leaving the loop (``break``, an exception,
Ctrl-C) stops every thread and releases the camera. Both return
:class:`edgepose.pose.Pose`. Joint names, limbs and flip pairs come from the model's
metadata (``model.meta``), so a custom keypoint set needs no code change.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from edgepose.bundled import DEFAULT_MODEL
from edgepose.coords import CROP_PADDING
from edgepose.errors import DataError, EdgeposeError
from edgepose.pose import Pose
from edgepose.topdown import PersonBoxes, predict_people

__all__ = ["Pose", "PoseEstimator", "load"]


class PoseEstimator:
    """A loaded model (any backend) with image-level ``predict`` and live ``track``."""

    def __init__(self, path: str | Path | None = None, device: str = "auto",
                 threads: int | None = None, server: str | None = None):
        from edgepose.bundled import resolve_model

        path = resolve_model(path)
        self.path = Path(path) if path is not None else DEFAULT_MODEL
        if path is None and server is None and not self.path.is_file():
            raise EdgeposeError(f"the bundled model {self.path} is missing from this install; "
                                "reinstall edgepose or pass a model path")
        self.device, self.threads = device, threads
        self.backend = open_backend(path, server, device, threads)
        self.meta = self.backend.meta
        self._detector = None
        self._renderer = None

    # ------------------------------------------------------------------ metadata

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.meta.joints)

    @property
    def limbs(self):
        return self.meta.limbs

    @property
    def flip_pairs(self):
        return self.meta.flip_pairs

    # ------------------------------------------------------------------ images

    def predict(self, image_bgr: np.ndarray, boxes: Sequence | None = None,
                padding: float = CROP_PADDING, detector=False) -> list[Pose]:
        """People in one BGR image: one Pose per box in ``boxes``, each padded by
        ``padding``; ``detector=True`` (the bundled person detector, or a
        :class:`edgepose.engines.detector.Detector` / its file path): every person it finds,
        best first, as ``edgepose predict --multi``; neither: one Pose of the whole image
        (:func:`edgepose.coords.whole_image_box`)."""
        return self.predict_many([image_bgr], [boxes], padding, detector=detector)[0]

    def predict_many(self, images: Sequence[np.ndarray], boxes: Sequence | None = None,
                     padding: float = CROP_PADDING, batch: int | None = None,
                     detector=False) -> list[list[Pose]]:
        """Several images at once: every crop of every image in one backend call
        (cross-image batching; the backend fits it to its own batch range), or in calls of
        at most ``batch`` crops. ``boxes[i]``: image i's boxes (or a
        :class:`edgepose.topdown.PersonBoxes`), None for the whole image; ``detector``: as
        in :meth:`predict`, for every image without boxes."""
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        det = self.detector(detector) if detector else None
        where = []
        for i, (img, bxs) in enumerate(zip(images, boxes)):
            if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
                raise DataError(f"image {i}: expected an (H, W, 3) BGR uint8 array, got "
                                f"{getattr(img, 'shape', type(img).__name__)}")
            if det is not None and bxs is None:
                where.append(PersonBoxes.detected(det, img))
            else:
                where.append(PersonBoxes.of(img, bxs, padding))
        return predict_people(self.backend, self.meta, images, where, batch)

    def detector(self, which=True):
        """The person detector ``predict(detector=...)`` uses: True = the bundled one
        (opened once, with this model's device and threads), a path = that file, or a
        Detector as it is."""
        from edgepose.engines.detector import Detector

        if hasattr(which, "crop_padding"):  # a Detector (or one that behaves like it)
            return which
        if which is True:
            if self._detector is None:
                self._detector = Detector(None, device=self.device, threads=self.threads,
                                          offline=True)
            return self._detector
        return Detector(which, device=self.device, threads=self.threads, offline=True)

    def draw(self, frame_bgr: np.ndarray, poses: Sequence[Pose]) -> np.ndarray:
        """Draw ``poses`` (skeleton, joints, box) onto ``frame_bgr`` in place and return it:
        the overlay ``edgepose run`` shows, as a separate, opt-in call."""
        from edgepose.realtime.render import Renderer

        if self._renderer is None:
            self._renderer = Renderer(self.limbs)
        for p in poses:
            self._renderer.draw_person(frame_bgr, p.keypoints, p.scores, p.box, p.track_id)
        return frame_bgr

    # ------------------------------------------------------------------ live

    def track(self, source=0, frames: int | None = None, every_frame: bool | None = None,
              smooth: bool = True, **options) -> Iterator[tuple[np.ndarray, list[Pose]]]:
        """Yield ``(frame_bgr, poses)`` for each frame of ``source`` (camera index, file,
        URL, 'csi', 'demo') through the live pipeline. The frame is as captured (draw on
        it with :meth:`draw`). A video file is read frame by frame unless
        ``every_frame=False``. Keyword arguments set tracking options
        (:class:`edgepose.realtime.tracking.TrackOptions`: ``multi=True`` for every person,
        ``conf``, ``max_people``, ``detect_every``, ...) or
        :class:`edgepose.realtime.runner.RunOptions` fields; an unknown one is an error
        that lists them."""
        from edgepose.realtime.runner import build_pipeline

        q: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()
        holder: dict = {}

        def on_frame(frame, people: list[Pose]) -> None:
            while not stop.is_set():
                try:
                    q.put((frame.image, people), timeout=0.1)
                    return
                except queue.Full:
                    continue
            raise _Stopped

        opts = self._run_options(source, frames, every_frame, smooth, on_frame, options)
        # built here so this thread can stop it; run in a worker so this is a generator
        pipe = build_pipeline(opts, self.backend)
        holder["pipe"] = pipe

        def worker() -> None:
            try:
                pipe.run()
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                holder["error"] = e
            finally:
                q.put(_END)

        t = threading.Thread(target=worker, name="edgepose-track", daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    break
                yield item
        finally:
            stop.set()
            pipe.interrupt()
            while t.is_alive():
                try:
                    q.get(timeout=0.1)  # unblock a producer waiting on a full queue
                except queue.Empty:
                    pass
                t.join(0.1)
        err = holder.get("error")
        if err is not None and not isinstance(err, (_Stopped, KeyboardInterrupt)):
            raise err

    def _run_options(self, source, frames, every_frame, smooth, on_frame, options: dict):
        """:meth:`track`'s arguments as the live app's RunOptions: the caller's option
        groups (if any) copied with what the arguments set, never changed in place."""
        from edgepose.realtime.capture import CaptureOptions
        from edgepose.realtime.pipeline import PipelineOptions
        from edgepose.realtime.runner import RunOptions
        from edgepose.realtime.smoothing import SmoothOptions
        from edgepose.realtime.sources import parse_source
        from edgepose.realtime.tracking import TrackOptions

        if every_frame is None:
            every_frame = parse_source(source).kind == "file"
        given = {k: options.pop(k, None) for k in ("smooth", "pipeline", "capture")}
        track_fields = {f.name for f in dataclasses.fields(TrackOptions)}
        tracking = {k: options.pop(k) for k in list(options) if k in track_fields}
        run_fields = {f.name for f in dataclasses.fields(RunOptions)}
        unknown = sorted(set(options) - run_fields)
        if unknown:
            raise EdgeposeError(
                f"track(): unknown option(s) {unknown}; tracking options are "
                f"{sorted(track_fields)}, run options {sorted(run_fields - {'model'})}")
        if tracking:
            options["track"] = dataclasses.replace(options.get("track") or TrackOptions(),
                                                   **tracking)
        return RunOptions(
            model=str(self.path), source=str(source), headless=True, quiet=True,
            device=self.device, threads=self.threads,
            smooth=dataclasses.replace(given["smooth"] or SmoothOptions(), enabled=bool(smooth)),
            pipeline=dataclasses.replace(given["pipeline"] or PipelineOptions(), frames=frames,
                                         on_frame=on_frame),
            capture=dataclasses.replace(given["capture"] or CaptureOptions(),
                                        every_frame=bool(every_frame)),
            **options)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PoseEstimator {self.path.name} {self.backend.name} {self.meta.name}>"


class _Stopped(Exception):
    """The consumer left the loop: ends the pipeline from inside its render thread."""


_END = object()


def load(path: str | Path | None = None, device: str = "auto",
         threads: int | None = None, server: str | None = None) -> PoseEstimator:
    """Open a model for :meth:`PoseEstimator.predict` / :meth:`PoseEstimator.track`:
    ``path`` = .onnx / .engine / .pt, a bundled model's name (``"heatmap-64"``:
    :data:`edgepose.bundled.NAMED_MODELS`), or None for the default one; ``server`` =
    ``grpc://HOST:PORT`` runs it on a Triton server (``edgepose serve``) instead, with
    ``path``, when given, the local model the server's must match."""
    return PoseEstimator(path, device, threads, server)


def open_backend(model, server: str | None, device: str = "auto", threads: int | None = None):
    """The backend of ``edgepose run / predict`` and :func:`load`: the local ``model``
    (None: the bundled one), or the model on Triton ``server`` (then a ``model`` given is
    what the server's metadata must match: a mismatch is one line)."""
    from edgepose.engines.backend import load_backend

    if server is None:
        return load_backend(model if model is not None else DEFAULT_MODEL, device=device,
                            threads=threads)
    from edgepose.engines.meta_io import read_meta
    from edgepose.engines.triton_backend import TritonBackend

    return TritonBackend(server, expect=read_meta(model) if model is not None else None)

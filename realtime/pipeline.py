"""The live loop as three overlapping stages::

    capture thread --(newest frame)--> inference (calling thread) --(queue of 2)--> render thread
    source.read()                      box, crop, backend, smooth      draw, write, show, log

While the render thread draws frame i and the capture thread reads frame i+2, the calling
thread runs the model on frame i+1, so throughput is set by the slowest stage rather than
the sum of all three. Inference stays in the calling (main) thread so Ctrl-C lands there.

Shutdown: every exit path (end of stream, ``frames`` reached, q pressed, an exception in
any stage, Ctrl-C) stops all stages, joins both threads within ``stop_timeout_s`` and
closes the FPS log (summary written). A stage's exception is re-raised in the calling
thread as one clear :class:`PipelineError` (user errors keep their own type).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from edgepose.errors import EdgeposeError, SourceError
from realtime.capture import CaptureThread, EndOfStream, Frame
from realtime.fpslog import FpsLog
from realtime.infer import estimate
from realtime.render import Display, Renderer, VideoSink, hud_lines
from realtime.tracking import PersonTracker

_DONE = object()


class PipelineError(EdgeposeError):
    """A stage of the live pipeline failed; the message names the stage and the cause."""


@dataclass
class PipelineOptions:
    """``frames``: stop after this many rendered frames (None = until the source ends);
    ``stall_timeout_s``: a live source that delivers nothing this long is an error."""

    frames: int | None = None
    render_queue: int = 2
    stop_timeout_s: float = 2.0
    poll_s: float = 0.05
    stall_timeout_s: float | None = 10.0
    on_frame: Callable[[Frame, list], None] | None = field(default=None, repr=False)


@dataclass
class Person:
    """One drawn person: smoothed ``keypoints`` (K, 2) frame px, ``scores`` (K,), the box
    xywh the crop was taken from, and the raw (unsmoothed) keypoints."""

    keypoints: np.ndarray
    scores: np.ndarray
    box: np.ndarray
    raw: np.ndarray
    track_id: int = 0


@dataclass
class _Work:
    frame: Frame
    people: list[Person]
    t: dict[str, float]
    dropped: int


@dataclass
class RunResult:
    """How the run ended (``reason``: eos | frames | quit) and the FPS-log summary."""

    reason: str
    summary: dict[str, Any]


class Pipeline:
    """Wires capture -> inference -> render for one run. Call :meth:`run` once."""

    def __init__(self, capture: CaptureThread, backend, meta, tracker: PersonTracker,
                 renderer: Renderer, log: FpsLog, display: Display | None = None,
                 sink: VideoSink | None = None, opts: PipelineOptions | None = None):
        self.capture = capture
        self.backend = backend
        self.meta = meta
        self.tracker = tracker
        self.renderer = renderer
        self.log = log
        self.display = display or Display(False)
        self.sink = sink
        self.opts = opts or PipelineOptions()
        self._q: queue.Queue = queue.Queue(maxsize=max(1, self.opts.render_queue))
        self._abort = threading.Event()  # stop now, drop queued work
        self._quit = threading.Event()  # the user closed the window / pressed q
        self._errors: list[BaseException] = []
        self._render_thread: threading.Thread | None = None
        self.rendered = 0
        self.sent = 0

    # ------------------------------------------------------------------ main thread

    def run(self) -> RunResult:
        try:
            self.capture.start()
            if self.sink is not None and self.sink.fps is None:
                self.sink.fps = self.capture.fps or None
            self._render_thread = threading.Thread(
                target=self._render_loop, name="edgepose-render", daemon=True)
            self._render_thread.start()
            reason = self._infer_loop()
            if reason != "quit":
                self._put(_DONE)
                self._render_thread.join()  # drains what is queued
                self._raise_stage_error()
        finally:
            self._shutdown()
        return RunResult(reason, self.log.summary())

    def _infer_loop(self) -> str:
        last_frame = time.monotonic()
        limit = self.opts.frames
        while True:
            self._raise_stage_error()
            if self._quit.is_set():
                return "quit"
            if limit is not None and self.sent >= limit:
                return "frames"
            try:
                frame = self.capture.get(timeout=self.opts.poll_s)
            except TimeoutError:
                stall = self.opts.stall_timeout_s
                if stall is not None and time.monotonic() - last_frame > stall:
                    raise SourceError(
                        f"{self.capture.name}: no frame for {stall:.0f} s; the source stalled"
                    ) from None
                continue
            except EndOfStream:
                return "eos"
            last_frame = time.monotonic()
            work = self._process(frame)
            self._put(work)
            self.sent += 1

    def _process(self, frame: Frame) -> _Work:
        dropped = self.capture.dropped
        image = frame.image
        h, w = image.shape[:2]
        try:
            tracks = list(self.tracker.boxes(image))
            boxes = [tr.box.copy() for tr in tracks]
            if tracks:
                res = estimate(self.backend, self.meta, image, boxes,
                               [tr.padding for tr in tracks])
                t_pre, t_inf = res.t_pre, res.t_inf
            else:
                now = time.perf_counter()
                t_pre = t_inf = (now, now)
            t_post0 = time.perf_counter()
            people: list[Person] = []
            if tracks:
                used = {id(tr): (b, c) for tr, b, c in zip(tracks, boxes, res.coords)}
                for tr in self.tracker.update(tracks, res.coords, res.scores, (w, h),
                                              frame.t_capture):
                    box, raw = used[id(tr)]
                    people.append(Person(tr.keypoints, tr.scores, box, raw, tr.id))
            t_post1 = time.perf_counter()
        except EdgeposeError:
            raise
        except Exception as e:
            raise PipelineError(f"inference stage failed on frame {frame.id} "
                                f"({type(e).__name__}: {e})") from e
        t = {"capture": frame.t_capture, "pre_start": t_pre[0], "pre_end": t_pre[1],
             "inf_start": t_inf[0], "inf_end": t_inf[1], "post_start": t_post0,
             "post_end": t_post1}
        return _Work(frame, people, t, dropped)

    def _put(self, item) -> None:
        while True:
            self._raise_stage_error()
            try:
                self._q.put(item, timeout=self.opts.poll_s)
                return
            except queue.Full:
                if self._render_thread is None or not self._render_thread.is_alive():
                    self._raise_stage_error()  # it may have failed since the check above
                    raise PipelineError("render stage stopped unexpectedly") from None

    def _raise_stage_error(self) -> None:
        if not self._errors:
            return
        e = self._errors[0]
        if isinstance(e, EdgeposeError):
            raise e
        raise PipelineError(f"render stage failed ({type(e).__name__}: {e})") from e

    def _shutdown(self) -> None:
        """Stop every stage; bounded by ``stop_timeout_s`` in total; close the log."""
        deadline = time.monotonic() + self.opts.stop_timeout_s
        self._abort.set()
        try:
            self.capture.request_stop()
            if self._render_thread is not None:
                self._render_thread.join(max(0.0, deadline - time.monotonic()))
            self.capture.opts.join_timeout_s = max(0.05, deadline - time.monotonic())
            self.capture.stop()
        finally:
            self.log.info["dropped_total"] = self.capture.dropped
            self.log.close()

    def leftover_threads(self) -> list[str]:
        """Names of this pipeline's threads still alive (should be empty after run)."""
        alive = []
        if self._render_thread is not None and self._render_thread.is_alive():
            alive.append(self._render_thread.name)
        if self.capture.alive:
            alive.append("edgepose-capture")
        return alive

    # ------------------------------------------------------------------ render thread

    def _render_loop(self) -> None:
        try:
            while True:
                try:
                    item = self._q.get(timeout=self.opts.poll_s)
                except queue.Empty:
                    if self._abort.is_set():
                        return
                    continue
                if item is _DONE or self._abort.is_set():
                    return
                self._render(item)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            self._errors.append(e)
        finally:
            try:
                if self.sink is not None:
                    self.sink.close()
            finally:
                self.display.close()

    def _render(self, work: _Work) -> None:
        t0 = time.perf_counter()
        image = work.frame.image
        for p in work.people:
            self.renderer.draw_person(image, p.keypoints, p.scores, p.box)
        hud = hud_lines(
            self.log.rolling_fps(), self.log.stage_ms(), work.dropped,
            getattr(self.backend, "name", type(self.backend).__name__),
            getattr(self.backend, "precision", getattr(self.meta, "precision", "?")),
            tuple(self.meta.input_size), len(work.people),
        )
        self.renderer.draw_hud(image, hud)
        if self.sink is not None:
            self.sink.write(image)
        if not self.display.show(image):
            self._quit.set()
        if self.opts.on_frame is not None:
            self.opts.on_frame(work.frame, work.people)
        t = dict(work.t, render_start=t0, render_end=time.perf_counter())
        self.log.record(work.frame.id, t, work.dropped, len(work.people))
        self.rendered += 1

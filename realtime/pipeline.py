"""A frame's journey, one small callable per stage, in three overlapping threads::

    capture thread   | calling thread (owns the tracker)                  | render thread
    1 capture        | 2 boxes -> 3 crop -> 4 infer -> 5 to frame -> 6     | 8 render + log
    (newest frame)   |   (tracking.boxes, topdown.crop_people,            |   (render,
                     |    topdown.infer, topdown.crop_to_image,           |    fpslog,
                     |    tracking.update, 7 smoothing.smooth_tracks)     |    keypoint log)

Stages 3-5 are :mod:`edgepose.topdown`, the top-down path the API's ``predict`` runs too, and
each frame's people are :class:`edgepose.pose.Pose` (what ``predict`` and ``track`` return).

While the render thread draws frame i, the calling thread runs frame i+1 through stages
2-7 and the capture thread reads the next one, so throughput is set by the slowest thread
(normally the model). The tracker lives in the calling thread alone: the next box comes
from this frame's pose (or the detector), with no lock and no stale pose. Stage times go
to the FPS log as pre (2-3), inf (4), post (5-6), smooth (7) and render (8). Inference stays
in the calling (main) thread so Ctrl-C lands there.

Shutdown: every exit path (end of stream, ``frames`` reached, q pressed, an exception in
any stage, Ctrl-C) stops all stages, joins every thread within ``stop_timeout_s`` and
closes the FPS log (summary written). A stage's exception is re-raised in the calling
thread as one clear :class:`PipelineError` (user errors keep their own type).
"""

from __future__ import annotations

import dataclasses
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edgepose.engines.backend import Backend
from edgepose.engines.triton_backend import ServerUnavailable
from edgepose.errors import EdgeposeError, PipelineError, SourceError
from edgepose.pose import Pose
from edgepose.topdown import crop_people, crop_to_image, infer
from edgepose.realtime.capture import CaptureThread, EndOfStream, Frame
from edgepose.realtime.fpslog import FpsLog
from edgepose.realtime.keypoint_log import KeypointLog
from edgepose.realtime.render import Display, Renderer, VideoSink, hud_lines
from edgepose.realtime.smoothing import smooth_tracks
from edgepose.realtime.tracking import PersonTracker

_DONE = object()


@dataclass
class PipelineOptions:
    """``frames``: stop after this many rendered frames (None = until the source ends);
    ``stall_timeout_s``: a source that delivers nothing this long is an error;
    ``on_frame(frame, people)``: called in the render thread for each frame, with the
    frame as captured (a clean copy: the overlay goes only to the window / video) and its
    :class:`edgepose.pose.Pose` list (smoothed keypoints, ``raw``, ``track_id``)."""

    frames: int | None = None
    render_queue: int = 2
    stop_timeout_s: float = 2.0
    poll_s: float = 0.05
    stall_timeout_s: float | None = 10.0
    on_frame: Callable[[Frame, list], None] | None = field(default=None, repr=False)


@dataclass
class _Work:
    frame: Frame
    people: list[Pose]
    t: dict[str, float]
    dropped: int


@dataclass
class RunResult:
    """How the run ended (``reason``: eos | frames | quit | interrupt) and the FPS-log summary."""

    reason: str
    summary: dict[str, Any]


class Pipeline:
    """Wires capture -> stages 2-7 (calling thread) -> render for one run. Call
    :meth:`run` once. The pipeline owns ``log``, ``sink`` and ``keypoint_log`` (each
    frame's people, written in the render thread before ``opts.on_frame``): :meth:`run`
    closes them on every exit path."""

    def __init__(self, capture: CaptureThread, backend: Backend, meta, tracker: PersonTracker,
                 renderer: Renderer, log: FpsLog, display: Display | None = None,
                 sink: VideoSink | None = None, opts: PipelineOptions | None = None,
                 keypoint_log: KeypointLog | None = None):
        self.capture = capture
        self.backend = backend
        self.meta = meta
        self.tracker = tracker
        self.renderer = renderer
        self.log = log
        self.display = display or Display(False)
        self.sink = sink
        self.opts = opts or PipelineOptions()
        self._render_q: queue.Queue = queue.Queue(maxsize=max(1, self.opts.render_queue))
        self._abort = threading.Event()  # stop now, drop queued work
        self._quit = threading.Event()  # the user closed the window / pressed q
        self.interrupted = False  # Ctrl-C asked for a stop (see interrupt())
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self.rendered = 0
        self.sent = 0
        self.keypoint_log = keypoint_log
        self._names = tuple(meta.joints)
        self.server_dropped = 0  # frames a remote model (Triton) could not be reached for
        self._down_since: float | None = None
        self._down_at_frame = 0

    # ------------------------------------------------------------------ main thread

    def interrupt(self) -> None:
        """Ask for a clean stop from a signal handler (Ctrl-C): no exception is thrown into
        whatever the main thread is doing (a KeyboardInterrupt raised inside a queue's or a
        condition's lock handling can leave that lock held and wedge the shutdown); the
        inference loop sees the flag within one poll interval and everything stops in order."""
        self.interrupted = True
        self._quit.set()

    def run(self) -> RunResult:
        try:
            self.capture.start()
            if self.sink is not None and self.sink.fps is None:
                self.sink.fps = self.capture.fps or None
            t = threading.Thread(target=self._render_loop, name="edgepose-render", daemon=True)
            self._threads.append(t)
            t.start()
            reason = self._frame_loop()
            if reason != "quit":
                self._put(self._render_q, _DONE, self._threads[0])
                self._threads[0].join()  # drains what is queued
                self._raise_stage_error()
        finally:
            self._shutdown()
        if self.interrupted:
            reason = "interrupt"
        return RunResult(reason, self.log.summary())

    def _frame_loop(self) -> str:
        """Stages 2-7 for every frame the capture thread hands over, then to render."""
        limit = self.opts.frames
        stall = self.opts.stall_timeout_s
        last_frame = time.monotonic()
        while True:
            self._raise_stage_error()
            if self._quit.is_set():
                return "quit"
            if limit is not None and self.sent >= limit:
                return "frames"
            try:
                frame = self.capture.get(timeout=self.opts.poll_s)
            except TimeoutError:
                if stall is not None and time.monotonic() - last_frame > stall:
                    raise SourceError(f"{self.capture.name}: no frame for {stall:.0f} s; "
                                      "the source stalled") from None
                continue
            except EndOfStream:
                return "eos"
            last_frame = time.monotonic()
            self._put(self._render_q, self._process(frame), self._threads[0])
            self.sent += 1

    def _process(self, frame: Frame) -> _Work:
        """Stages 2-7 for one frame; a failure names its stage and the frame."""
        dropped = self.capture.dropped
        h, w = frame.image.shape[:2]
        stage = "boxes"
        try:
            t0 = time.perf_counter()
            try:
                tracks = list(self.tracker.boxes(frame.image))  # 2 boxes
            except ServerUnavailable as e:  # a served detector away: as for the model
                self._server_down(e)
                return self._nobody(frame, dropped, t0)
            if not tracks:
                if self._down_since is not None:  # no track: the detector was asked, answered
                    self._server_back()
                return self._nobody(frame, dropped, t0)
            stage = "preprocessing"
            batch, mats = crop_people(self.meta, frame.image, [tr.crop_box for tr in tracks],
                                      [tr.crop_padding for tr in tracks],
                                      [self.tracker.opts.mask_others] * len(tracks))  # 3 crop
            t1 = time.perf_counter()
            stage = "inference"
            try:
                coords, scores = infer(self.backend, batch)  # 4 infer
            except ServerUnavailable as e:  # a remote model away: drop the frame, carry on
                self._server_down(e)
                return self._nobody(frame, dropped, t0)
            if self._down_since is not None:
                self._server_back()
            t2 = time.perf_counter()
            stage = "tracking"
            kept = self.tracker.update(tracks, crop_to_image(coords, mats), scores,
                                       (w, h))  # 5 to frame, 6 next boxes
            t3 = time.perf_counter()
            stage = "smoothing"
            smooth_tracks(kept, frame.t)  # 7 smoothing (a file's own clock)
            people: list[Pose] = [Pose(tr.crop_box, tr.keypoints, tr.scores, tr.id,
                                       self._names, tr.raw, box_score=tr.box_score)
                                  for tr in kept]
            t4 = time.perf_counter()
        except EdgeposeError:
            raise
        except Exception as e:
            raise PipelineError(f"{stage} stage failed on frame {frame.id} "
                                f"({type(e).__name__}: {e})") from e
        return self._work(frame, people, dropped, (t0, t1, t2, t3, t4))

    def _server_down(self, e: ServerUnavailable) -> None:
        """One line when a remote model goes away; its frames are counted, not processed."""
        self.server_dropped += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._down_at_frame = self.server_dropped
            print(f"edgepose: {e}; frames are dropped until it is back", file=sys.stderr,
                  flush=True)

    def _server_back(self) -> None:
        lost = self.server_dropped - self._down_at_frame + 1
        print(f"edgepose: the server is back after {time.monotonic() - self._down_since:.1f} s"
              f" ({lost} frames dropped)", file=sys.stderr, flush=True)
        self._down_since = None

    def _nobody(self, frame: Frame, dropped: int, t0: float) -> _Work:
        """The frame with no people: nobody found, or its model / detector unreachable."""
        t1 = time.perf_counter()
        return self._work(frame, [], dropped, (t0, t1, t1, t1, t1))

    @staticmethod
    def _work(frame: Frame, people: list, dropped: int, ts: tuple) -> _Work:
        t0, t1, t2, t3, t4 = ts
        t = {"capture": frame.t_capture, "pre_start": t0, "pre_end": t1, "inf_start": t1,
             "inf_end": t2, "post_start": t2, "post_end": t3, "smooth_start": t3,
             "smooth_end": t4}
        return _Work(frame, people, t, dropped)

    def _put(self, q: queue.Queue, item, consumer: threading.Thread) -> None:
        """Blocking put that gives up when the pipeline aborts or ``consumer`` died."""
        while True:
            self._raise_stage_error()
            if self._abort.is_set():
                raise _Aborted()
            try:
                q.put(item, timeout=self.opts.poll_s)
                return
            except queue.Full:
                if not consumer.is_alive():
                    self._raise_stage_error()  # it may have failed since the check above
                    raise PipelineError(f"{consumer.name} stage stopped unexpectedly") from None

    def _raise_stage_error(self) -> None:
        if not self._errors:
            return
        e = self._errors[0]
        if isinstance(e, EdgeposeError):
            raise e
        raise PipelineError(f"pipeline stage failed ({type(e).__name__}: {e})") from e

    def _fail(self, e: BaseException) -> None:
        """Record a worker thread's exception for the main thread and stop the others."""
        if not isinstance(e, _Aborted):
            self._errors.append(e)

    def _shutdown(self) -> None:
        """Stop every stage; bounded by ``stop_timeout_s`` in total; close the log."""
        deadline = time.monotonic() + self.opts.stop_timeout_s
        self._abort.set()
        try:
            self.capture.request_stop()
            for t in self._threads:
                t.join(max(0.0, deadline - time.monotonic()))
            self.capture.stop(timeout=max(0.05, deadline - time.monotonic()))
        finally:
            # "dropped" in the summary counts up to the last rendered frame; this one also
            # the frames the capture thread skipped while the run was stopping
            self.log.info["dropped_incl_stop"] = self.capture.dropped
            if self.server_dropped:
                self.log.info["server_dropped"] = self.server_dropped
            self.log.close()
            if self.keypoint_log is not None:
                self.keypoint_log.close()

    def leftover_threads(self) -> list[str]:
        """Names of this pipeline's threads still alive (should be empty after run)."""
        alive = [t.name for t in self._threads if t.is_alive()]
        if self.capture.alive:
            alive.append("edgepose-capture")
        return alive

    # ------------------------------------------------------------------ render thread

    def _render_loop(self) -> None:
        try:
            while True:
                try:
                    item = self._render_q.get(timeout=self.opts.poll_s)
                except queue.Empty:
                    if self._abort.is_set():
                        return
                    continue
                if item is _DONE or self._abort.is_set():
                    return
                self._render(item)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            self._fail(e)
        finally:
            try:
                if self.sink is not None:
                    self.sink.close()
            finally:
                self.display.close()

    def _render(self, work: _Work) -> None:
        t0 = time.perf_counter()
        image = work.frame.image
        clean = image.copy() if self.opts.on_frame is not None else None
        for p in work.people:
            self.renderer.draw_person(image, p.keypoints, p.scores, p.box, p.track_id)
        hud = hud_lines(
            self.log.rolling_fps(), self.log.stage_ms(), work.dropped,
            self.backend.name, self.backend.precision,
            tuple(self.meta.input_size), len(work.people),
        )
        self.renderer.draw_hud(image, hud, avoid=[p.box for p in work.people])
        if self.sink is not None:
            self.sink.write(image)
        if not self.display.show(image):
            self._quit.set()
        if self.keypoint_log is not None:
            self.keypoint_log.write(work.frame, work.people)
        if self.opts.on_frame is not None:
            self.opts.on_frame(dataclasses.replace(work.frame, image=clean), work.people)
        t = dict(work.t, render_start=t0, render_end=time.perf_counter())
        self.log.record(work.frame.id, t, work.dropped, len(work.people))
        self.rendered += 1


class _Aborted(Exception):
    """Internal: a blocked hand-over gave up because the pipeline is stopping."""

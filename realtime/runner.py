"""Build and run the live app from one options object (what ``edgepose run`` parses).

``run_app(opts)`` opens the model and the source, runs the pipeline, and always prints
the summary line; it returns a :class:`realtime.pipeline.RunResult`. Ctrl-C propagates
as ``KeyboardInterrupt`` *after* everything is stopped and the log is flushed.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.engines.backend import Backend
from edgepose.errors import EdgeposeError
from edgepose.realtime.capture import CaptureOptions, CaptureThread
from edgepose.realtime.fpslog import FpsLog, format_summary, summary_path
from edgepose.realtime.keypoint_log import KeypointLog
from edgepose.realtime.pipeline import Pipeline, PipelineOptions, RunResult
from edgepose.realtime.render import Display, Renderer, RenderOptions, VideoSink
from edgepose.realtime.smoothing import SmoothOptions
from edgepose.realtime.sources import SourceOptions, open_source, parse_source
from edgepose.realtime.tracking import PersonTracker, TrackOptions


@dataclass
class RunOptions:
    """Everything ``edgepose run`` can set, grouped by stage."""

    model: str
    source: str = "0"
    device: str = "auto"
    threads: int | None = None
    headless: bool = False
    save: str | None = None
    log: str | None = None
    keypoints: str | None = None  # --keypoints poses.jsonl (edgepose.realtime.keypoint_log)
    quiet: bool = False
    source_opts: SourceOptions = field(default_factory=SourceOptions)
    capture: CaptureOptions = field(default_factory=CaptureOptions)
    track: TrackOptions = field(default_factory=TrackOptions)
    smooth: SmoothOptions = field(default_factory=SmoothOptions)
    render: RenderOptions = field(default_factory=RenderOptions)
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)


def check_output_path(path: str | None, what: str) -> None:
    """Fail before starting when an output file cannot be written (a folder at its path, a
    file where its folder should be, a read-only place); a missing folder is made."""
    if path:
        from edgepose.fileio import check_output_file

        check_output_file(path, what)


def build_pipeline(opts: RunOptions, backend: Backend) -> Pipeline:
    """Wire a pipeline around an already loaded ``backend`` (an
    :class:`edgepose.engines.backend.Backend`). The pipeline owns what it opens here: the
    FPS log, the keypoint log and the video file are closed when it stops."""
    meta = backend.meta
    spec = parse_source(opts.source)
    cap_opts = opts.capture
    if spec.kind in ("demo", "synthetic") and not opts.source_opts.demo_fps:
        # An unpaced synthetic source would otherwise render frames only to drop them,
        # stealing CPU from inference: render each next frame while the current one is
        # being processed instead (still overlapped, never ahead by more than the queue).
        cap_opts = dataclasses.replace(cap_opts, every_frame=True, queue_size=1)
    capture = CaptureThread(lambda: open_source(spec, opts.source_opts), cap_opts)
    tracker = PersonTracker(opts.track, opts.smooth)
    # one --conf: the tracker's keypoint threshold is the renderer's colour scale too
    renderer = Renderer(meta.limbs, dataclasses.replace(opts.render, conf=opts.track.conf))
    info = {"backend": backend.name, "model": meta.name, "precision": backend.precision,
            "input_size": list(meta.input_size), "source": opts.source}
    log = FpsLog(opts.log, info=info)
    sink = None
    if opts.save:
        sink = VideoSink(opts.save)  # at the source's frame rate once it is open
    display = Display(not opts.headless, saving=bool(opts.save))
    keypoints = KeypointLog(opts.keypoints) if opts.keypoints else None
    return Pipeline(capture, backend, meta, tracker, renderer, log, display, sink,
                    opts.pipeline, keypoint_log=keypoints)


# Signals that stop a run like Ctrl-C: the terminal (SIGINT), `docker stop` / systemd /
# `kill` (SIGTERM) and a closed SSH session (SIGHUP). Each finalises the video, flushes the
# logs and prints the summary; the exit status is 128 + the signal's number.
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, n))


class Stopped(KeyboardInterrupt):
    """The run was stopped by ``signum`` after a clean shutdown (a KeyboardInterrupt, so
    callers that handle Ctrl-C handle every stop signal the same way)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def _install_stop_signals(pipe: Pipeline, got: list[int]) -> dict:
    """First stop signal: a clean, ordered stop (``pipe.interrupt``), its number kept in
    ``got``; a second one raises KeyboardInterrupt at once. Returns the previous handlers
    ({} off the main thread, where Python cannot install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum, frame):
        if pipe.interrupted:
            raise KeyboardInterrupt
        got.append(signum)
        pipe.interrupt()

    return {s: signal.signal(s, handler) for s in STOP_SIGNALS}


def run_app(opts: RunOptions, backend: Backend | None = None) -> RunResult:
    """Open the model (unless ``backend`` is given) and source, run until the end."""
    check_output_path(opts.save, "video")
    check_output_path(opts.log, "log")
    check_output_path(opts.keypoints, "keypoint log")
    own_backend = backend is None
    if own_backend:
        from edgepose.engines.backend import load_backend

        backend = load_backend(opts.model, device=opts.device, threads=opts.threads)
    pipe = None
    failed = True
    try:
        backend.warmup(2)
        pipe = build_pipeline(opts, backend)
        got: list[int] = []
        previous = _install_stop_signals(pipe, got)
        try:
            result = pipe.run()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        failed = False
        if result.reason == "interrupt":
            # after the stop, the flushed log and the summary
            raise Stopped(got[0] if got else signal.SIGINT)
        return result
    finally:
        # a run that failed before its first frame (a source that never opened) says
        # only its error, not "0 frames, 0.0 FPS"
        if pipe is not None and not opts.quiet and not (failed and pipe.rendered == 0):
            s = pipe.log.summary()
            print(f"edgepose: {format_summary(s)}", file=sys.stderr)
            if opts.log:
                print(f"edgepose: log {opts.log}, summary {summary_path(opts.log)}",
                      file=sys.stderr)
        if own_backend:
            backend.close()

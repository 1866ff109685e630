"""``edgepose run``: live pose on a webcam, video file, stream, GStreamer pipeline or demo."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Run a pose model live. The capture thread always hands over the newest frame (older
ones are dropped and counted), the person box follows the previous frame's keypoints,
keypoints are smoothed with a One Euro filter, and a HUD shows FPS and per-stage times.
Press q or Esc in the window to stop; Ctrl-C, SIGTERM (docker stop, systemd, kill) and SIGHUP
(a closed SSH session) stop it the same way: video finalised, logs and summary written; exit
status 128 + the signal (130, 143, 129).

sources:
  0, 1, ...          USB/V4L2 camera index (MJPG requested, 1-frame driver buffer)
  video.mp4          a video file: every frame, in order, at the file's pace in the
                     saved video (--realtime reads it like a live camera instead)
  rtsp://... http:// a network stream
  '... ! appsink'    a GStreamer pipeline (needs an OpenCV built with GStreamer)
  csi, csi:1         Jetson CSI camera via nvarguscamerasrc (GStreamer)
  demo               a slideshow of bundled photos of real people (LSP test, CC BY 2.0)
  synthetic          the animated synthetic figure
"""


def add_run_options(p: argparse.ArgumentParser, source_default: str | None) -> None:
    """Options shared by ``run`` and ``demo``; defaults come from the option dataclasses."""
    from edgepose.realtime.smoothing import SmoothOptions
    from edgepose.realtime.tracking import TrackOptions

    sm0, tr0 = SmoothOptions(), TrackOptions()
    if source_default is None:
        p.add_argument("--source", required=True,
                       help="camera index, video file, stream URL, GStreamer pipeline, "
                            "'csi[:N]' or 'demo'")
    else:
        p.add_argument("--source", default=source_default,
                       help=f"frame source (default {source_default!r}); see 'edgepose run -h'")
    io = p.add_argument_group("output")
    io.add_argument("--headless", action="store_true", help="no window (servers, CI)")
    io.add_argument("--save", metavar="OUT.mp4",
                    help="write the rendered video (mp4v codec): .mp4 is finalised when the run "
                         "stops (end, q, Ctrl-C, SIGTERM, SIGHUP); name it .mkv or .avi for "
                         "unattended recording: those stay playable even after kill -9 or a "
                         "power cut (all but the last ~256 KB)")
    io.add_argument("--log", metavar="LOG.jsonl",
                    help="per-frame timing log: JSON lines, or CSV if the name ends in .csv; "
                         "a summary goes to LOG.summary.json")
    io.add_argument("--keypoints", metavar="POSES.jsonl",
                    help="keypoint log: one JSON line per frame with each person's track id, "
                         "box and 17 x (x, y, score) in frame pixels, smoothed and raw")
    io.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    io.add_argument("--quiet", action="store_true", help="do not print the summary line")
    src = p.add_argument_group("source")
    src.add_argument("--every-frame", action="store_true",
                     help="process every frame in order (the default for video files)")
    src.add_argument("--realtime", action="store_true",
                     help="read a video file at its own frame rate and drop stale frames, "
                          "like a live camera (default for files: every frame, in order)")
    src.add_argument("--reconnect", type=int, default=0, metavar="N",
                     help="reconnect a lost camera/stream up to N times (default 0)")
    src.add_argument("--width", type=int, help="camera width to request (px)")
    src.add_argument("--height", type=int, help="camera height to request (px)")
    src.add_argument("--fps", type=float, help="camera FPS to request")
    src.add_argument("--demo-fps", type=float, default=30.0,
                     help="demo source frame rate (default 30, dropping stale frames like a "
                          "camera); 0 = as fast as the pipeline runs, no drops")
    src.add_argument("--demo-size", default="640x480", metavar="WxH",
                     help="demo frame size (default 640x480)")
    src.add_argument("--stall-timeout", type=float, default=10.0, metavar="S",
                     help="stop with an error when no frame arrives for S seconds (default 10)")
    mp = p.add_argument_group("model and tracking")
    mp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                    help="where to run the model (default auto: GPU if available)")
    mp.add_argument("--threads", type=int, metavar="N", help="CPU inference threads")
    mp.add_argument("--conf", type=float, default=tr0.conf,
                    help=f"keypoint score threshold for drawing and tracking (default {tr0.conf})")
    mp.add_argument("--multi", action="store_true",
                    help="several people: the person detector every --detect-every frames, "
                         "IoU tracking, every crop in one batched model call")
    mp.add_argument("--max-people", type=int, default=tr0.max_people, metavar="N",
                    help=f"--multi: at most N people (default {tr0.max_people})")
    mp.add_argument("--detect-every", type=int, default=tr0.detect_every, metavar="N",
                    help=f"--multi: run the detector every N frames and whenever no one is "
                         f"tracked (default {tr0.detect_every})")
    mp.add_argument("--detector", default=None, metavar="FILE|URL",
                    help="person detector: an .onnx with detector metadata, a TensorRT "
                         ".engine built from it (default: the bundled NanoDet), or the one "
                         "edgepose serve --detector serves: grpc://HOST:8001/person_detector")
    sm = p.add_argument_group("smoothing (One Euro filter)")
    sm.add_argument("--no-smooth", action="store_true", help="turn smoothing off")
    sm.add_argument("--smooth-min-cutoff", type=float, default=sm0.min_cutoff, metavar="HZ",
                    help=f"cutoff at rest; lower = steadier, more lag (default {sm0.min_cutoff})")
    sm.add_argument("--smooth-beta", type=float, default=sm0.beta,
                    help=f"speed coefficient (1/px); higher = less lag when moving "
                         f"(default {sm0.beta})")
    sm.add_argument("--smooth-d-cutoff", type=float, default=sm0.d_cutoff, metavar="HZ",
                    help=f"cutoff of the speed estimate (default {sm0.d_cutoff})")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help="run a model live on a camera, video, stream or the demo scene",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="model file: .onnx (ONNX Runtime), .engine/.plan (TensorRT) or .pt, "
                        "or a bundled model's name: heatmap-128 (the default), dsnt-64 (the "
                        "64-px default), heatmap-64, dsnt-128, nerpe-128, nerpe-64")
    p.add_argument("--server", default=None, metavar="URL",
                   help="run the model on a Triton server (edgepose serve) at "
                        "grpc://HOST:8001 or http://HOST:8000; capture, tracking and drawing "
                        "stay here. With --model, the server's model must match it")
    add_run_options(p, source_default=None)
    return p


def parse_frame_size(text: str) -> tuple[int, int]:
    from edgepose.errors import EdgeposeError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise EdgeposeError(f"size {text!r} is not WxH, e.g. 640x480") from None
    if w < 32 or h < 32:
        raise EdgeposeError(f"size {text!r} is too small (at least 32x32)")
    return w, h


def options_from_args(args, model: str):
    """argparse namespace -> realtime.runner.RunOptions."""
    from edgepose.errors import EdgeposeError
    from edgepose.realtime.runner import RunOptions
    from edgepose.realtime.capture import CaptureOptions
    from edgepose.realtime.pipeline import PipelineOptions
    from edgepose.realtime.smoothing import SmoothOptions
    from edgepose.realtime.sources import SourceOptions
    from edgepose.realtime.tracking import TrackOptions

    if args.frames is not None and args.frames < 1:
        raise EdgeposeError(f"--frames must be >= 1, got {args.frames}")
    if args.reconnect < 0:
        raise EdgeposeError(f"--reconnect must be >= 0, got {args.reconnect}")
    if not 0.0 <= args.conf < 1.0:
        raise EdgeposeError(f"--conf must be in [0, 1), got {args.conf}")
    if args.smooth_min_cutoff <= 0 or args.smooth_d_cutoff <= 0 or args.smooth_beta < 0:
        raise EdgeposeError("--smooth-min-cutoff and --smooth-d-cutoff must be > 0 and "
                            f"--smooth-beta >= 0, got {args.smooth_min_cutoff}, "
                            f"{args.smooth_d_cutoff}, {args.smooth_beta}")
    if args.threads is not None and args.threads < 1:
        raise EdgeposeError(f"--threads must be >= 1, got {args.threads}")
    if args.max_people < 1 or args.detect_every < 1:
        raise EdgeposeError(f"--max-people and --detect-every must be >= 1, got "
                            f"{args.max_people} and {args.detect_every}")
    if args.every_frame and args.realtime:
        raise EdgeposeError("--every-frame and --realtime contradict each other; pick one")
    from edgepose.realtime.sources import parse_source

    # A file is read frame by frame unless it should behave like a camera (--realtime);
    # live sources always drop stale frames.
    every_frame = args.every_frame or (parse_source(args.source).kind == "file"
                                       and not args.realtime)
    return RunOptions(
        model=model, source=args.source, device=args.device, threads=args.threads,
        headless=args.headless, save=args.save, log=args.log, quiet=args.quiet,
        keypoints=args.keypoints,
        source_opts=SourceOptions(width=args.width, height=args.height, fps=args.fps,
                                  demo_fps=args.demo_fps, demo_size=parse_frame_size(args.demo_size),
                                  pace_files=args.realtime),
        capture=CaptureOptions(every_frame=every_frame, reconnect=args.reconnect),
        track=TrackOptions(conf=args.conf, multi=args.multi, max_people=args.max_people,
                           detect_every=args.detect_every, detector=args.detector),
        smooth=SmoothOptions(enabled=not args.no_smooth, min_cutoff=args.smooth_min_cutoff,
                             beta=args.smooth_beta, d_cutoff=args.smooth_d_cutoff),
        pipeline=PipelineOptions(frames=args.frames, stall_timeout_s=args.stall_timeout),
    )


def model_or_default(args, announce: bool = True) -> str:
    """``--model``, or the bundled model (said once on stderr, unless --quiet)."""
    import sys

    from edgepose.errors import EdgeposeError
    from edgepose.bundled import DEFAULT_MODEL

    if args.model:
        return args.model
    if not DEFAULT_MODEL.is_file():
        raise EdgeposeError(f"the bundled model {DEFAULT_MODEL} is missing from this install; "
                            "reinstall edgepose or pass --model PATH")
    if announce and not args.quiet:
        print(f"edgepose: no --model given; using the bundled {DEFAULT_MODEL.name}",
              file=sys.stderr)
    return str(DEFAULT_MODEL)


def run(args) -> int:
    from edgepose.realtime.runner import run_app

    if args.server:
        from edgepose.app.api import open_backend

        backend = open_backend(args.model, args.server)
        try:
            run_app(options_from_args(args, args.server), backend=backend)
        finally:
            backend.close()
        return 0
    run_app(options_from_args(args, model_or_default(args)))
    return 0

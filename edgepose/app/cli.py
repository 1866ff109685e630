"""The ``edgepose`` command.

Each subcommand lives in ``edgepose/app/commands/<name>.py`` with two functions:
``add_parser(subparsers)`` (argparse set-up only; no heavy imports, so ``--help`` is fast)
and ``run(args) -> int``. User mistakes raise :class:`edgepose.errors.EdgeposeError` and are
printed here as one line, without a traceback (exit status 2).
"""

from __future__ import annotations

import argparse
import sys

from edgepose import __version__
from edgepose.app.commands import adapt, build, calibrate, convert, demo
from edgepose.app.commands import eval as eval_cmd
from edgepose.app.commands import (
    export, info, label, nerpe_map, predict, profile, run, serve, synth, train, weights,
)
from edgepose.errors import EdgeposeError

# Order = order in --help. Command modules import only argparse at module level.
COMMANDS = (synth, convert, label, weights, train, eval_cmd, export, build, calibrate, nerpe_map,
            run, demo, predict, profile, serve, adapt, info)


# Every path a command writes, checked before any work (edgepose.fileio): "file" = a file
# that may be created or replaced, "dir" = a folder that is made if missing. A folder where a
# file should go, a read-only filesystem or a place without write permission is one line
# before the command starts, not a traceback after a long evaluation.
OUTPUTS: dict[str, dict[str, str]] = {
    "convert": {"out": "file"}, "label": {"out": "file"}, "train": {"out": "dir"},
    "eval": {"json": "file", "coco_results": "file"},
    "export": {"out": "file", "triton_repo": "dir"}, "build": {"out": "file"},
    "calibrate": {"out": "file"}, "nerpe-map": {"out": "file"}, "heatmap": {"out": "file"},
    "run": {"save": "file", "log": "file", "keypoints": "file"},
    "demo": {"save": "file", "log": "file", "keypoints": "file"},
    # predict's --save-dir is checked by the command itself, against its inputs too
    "predict": {"out": "file"}, "profile": {"out": "dir"},
    "serve": {"log": "file"}, "adapt": {"out": "file"},
    "weights": {"out": "file", "out_dir": "dir"}, "synth": {"out": "dir"},
}


def check_outputs(args) -> None:
    """Refuse unusable output paths of ``args.command`` before it runs (see OUTPUTS)."""
    from edgepose.fileio import check_output_dir, check_output_file

    for name, kind in OUTPUTS.get(args.command, {}).items():
        value = getattr(args, name, None)
        if not value:
            continue
        flag = "--" + name.replace("_", "-")
        if args.command == "synth":
            flag = "OUT"
        (check_output_dir if kind == "dir" else check_output_file)(value, flag)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgepose",
        description=(
            "Real-time low-resolution human pose estimation: train heatmap / DSNT / NerPE "
            "models, export them to ONNX and TensorRT, and run them live on a webcam, "
            "video or the built-in demo scene."
        ),
        epilog="Run 'edgepose <command> --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for module in COMMANDS:
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        check_outputs(args)
        return int(args._run(args) or 0)
    except EdgeposeError as e:
        print(f"edgepose {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", 2)  # realtime's Stopped carries SIGTERM / SIGHUP
        why = f" by {e}" if signum != 2 else ""
        print(f"edgepose {args.command}: interrupted{why}", file=sys.stderr)
        return 128 + signum
    except OSError as e:  # a write that failed part-way (disk full, folder removed): one line
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"edgepose {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

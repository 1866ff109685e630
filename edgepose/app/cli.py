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
    export, heatmap, info, label, predict, profile, run, serve, synth, train, weights,
)
from edgepose.errors import EdgeposeError

# Order = order in --help. Command modules import only argparse at module level.
COMMANDS = (synth, convert, label, weights, train, eval_cmd, export, build, calibrate, heatmap,
            run, demo, predict, profile, serve, adapt, info)


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
        return int(args._run(args) or 0)
    except EdgeposeError as e:
        print(f"edgepose {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgepose {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``edgepose demo``: ``edgepose run`` on the built-in animated scene with the bundled model."""

from __future__ import annotations

import argparse

from edgepose.commands.run import add_run_options, options_from_args

DESCRIPTION = """\
Run the bundled demo model (edgepose/assets/demo.onnx, trained on synthetic figures) on
the built-in animated scene: no camera, dataset or download needed. Same options as
'edgepose run'; e.g. 'edgepose demo --headless --frames 300 --save demo.mp4 --log demo.jsonl'.
Use --source 0 to try the demo model on your webcam.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo", help="live demo: bundled model on the built-in synthetic scene",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="model file to use instead of the bundled edgepose/assets/demo.onnx")
    add_run_options(p, source_default="demo")
    return p


def run(args) -> int:
    from edgepose.errors import EdgeposeError
    from realtime.app import DEMO_MODEL, run_app

    model = args.model or str(DEMO_MODEL)
    if args.model is None and not DEMO_MODEL.is_file():
        raise EdgeposeError(
            f"the bundled demo model {DEMO_MODEL} is missing from this install; reinstall "
            "edgepose or pass --model PATH"
        )
    run_app(options_from_args(args, model))
    return 0

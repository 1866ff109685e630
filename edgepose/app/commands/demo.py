"""``edgepose demo``: ``edgepose run`` on the built-in animated scene with the bundled model."""

from __future__ import annotations

import argparse
import sys

from edgepose.app.commands.run import add_run_options, options_from_args

DEFAULT_HEADLESS_FRAMES = 300
DEFAULT_HEADLESS_SAVE = "edgepose-demo.mp4"

DESCRIPTION = """\
Run the bundled demo model (edgepose/assets/demo.onnx, trained on synthetic figures) on
the built-in animated scene: no camera, dataset or download needed. Same options as
'edgepose run'; e.g. 'edgepose demo --headless --frames 300 --save demo.mp4 --log demo.jsonl'.
Use --source 0 to try the demo model on your webcam. Where no window can be shown and
neither --frames nor --save is given, it runs 300 frames and saves edgepose-demo.mp4.
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
    from edgepose.realtime.app import DEMO_MODEL, run_app

    model = args.model or str(DEMO_MODEL)
    if args.model is None and not DEMO_MODEL.is_file():
        raise EdgeposeError(
            f"the bundled demo model {DEMO_MODEL} is missing from this install; reinstall "
            "edgepose or pass --model PATH"
        )
    if not args.headless and args.frames is None and args.save is None:
        from edgepose.realtime.render import gui_available

        if not gui_available():
            # Nothing could be shown: a bounded run that leaves a video to look at beats a
            # silent endless loop.
            args.frames, args.save = DEFAULT_HEADLESS_FRAMES, DEFAULT_HEADLESS_SAVE
            args.headless = True
            print(f"edgepose demo: no window can be shown here; running {args.frames} frames "
                  f"and saving the overlay to {args.save} (use --headless for an endless run "
                  "or --frames/--save to choose)", file=sys.stderr)
    run_app(options_from_args(args, model))
    return 0

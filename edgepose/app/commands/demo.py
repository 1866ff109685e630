"""``edgepose demo``: ``edgepose run`` on the built-in animated scene with the bundled model."""

from __future__ import annotations

import argparse
import sys

from edgepose.app.commands.run import add_run_options, options_from_args

DEFAULT_HEADLESS_FRAMES = 300
DEFAULT_HEADLESS_SAVE = "edgepose-demo.mp4"

DESCRIPTION = """\
Run the bundled model on real people: a slideshow of bundled LSP test photos (CC BY 2.0;
never trained on) with the overlay drawn on them - no camera, dataset or download needed.
'--source synthetic' shows the animated synthetic figure instead, '--source 0' your webcam.
Same options as 'edgepose run'; e.g.
'edgepose demo --headless --frames 300 --save demo.mp4 --log demo.jsonl'.
Without a window (--headless, or an OpenCV without GUI) and without --frames it stops after
300 frames; without a window and without --save it saves edgepose-demo.mp4.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo", help="live demo: the bundled model on bundled photos of real people",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="model file or bundled model name (e.g. dsnt-64) instead of the "
                        "default bundled one")
    add_run_options(p, source_default="demo")
    return p


def run(args) -> int:
    from edgepose.app.commands.run import model_or_default
    from edgepose.realtime.runner import run_app

    model = model_or_default(args, announce=False)
    notes = []
    if not args.headless and args.frames is None and args.save is None:
        from edgepose.realtime.render import gui_available

        if not gui_available():
            # Nothing could be shown: a bounded run that leaves a video to look at beats a
            # silent endless loop.
            args.headless, args.save = True, DEFAULT_HEADLESS_SAVE
            notes.append(f"no window can be shown here; saving the overlay to {args.save}")
    if args.headless and args.frames is None:
        args.frames = DEFAULT_HEADLESS_FRAMES
        notes.append(f"running {args.frames} frames (--frames N to choose)")
    if notes and not args.quiet:
        print(f"edgepose demo: {'; '.join(notes)}", file=sys.stderr)
    run_app(options_from_args(args, model))
    return 0

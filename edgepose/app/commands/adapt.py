"""``edgepose adapt``: fine-tune the fast model on your own camera's footage (teacher labels)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from edgepose.data.footage import SamplingOptions

    from edgepose.engines.teacher import DEFAULT_TEACHER, TEACHER_NAMES

    s0 = SamplingOptions()
    p = subparsers.add_parser(
        "adapt",
        help="adapt a model to your camera: the teacher labels your footage, the fast "
             "model learns it",
        description=(
            "Sample distinct frames of FOOTAGE (videos, image-sequence folders or images; "
            "scene-change aware), label every person with the bundled detector and the "
            "teacher (MoveNet Thunder; import it once: edgepose weights import movenet-thunder), hold out "
            "the last --holdout of each clip in time, fine-tune the model on the rest mixed "
            "with replayed real training data, export ONNX whose metadata records the "
            "adaptation, and print agreement with the teacher on the held-out frames before "
            "and after, the change on LSP test (what was forgotten) and the latency. "
            "Resumable: rerun the same command after an interruption."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("footage", nargs="+", metavar="FOOTAGE",
                   help="video file(s), image-sequence folder(s) or image(s) of your camera")
    p.add_argument("--out", required=True, metavar="ADAPTED.onnx", help="the adapted model")
    p.add_argument("--model", default=None,
                   help="model to adapt: an edgepose checkpoint (.pt) or an .onnx with its .pt "
                        "beside it (default: the bundled real model)")
    p.add_argument("--teacher", default=DEFAULT_TEACHER, choices=TEACHER_NAMES,
                   help="the model that labels the footage (MoveNet in-process, or BlazePose "
                        "in its own venv)")
    p.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of each clip, at its end in time, kept for evaluation only")
    p.add_argument("--replay", action="append", default=[], metavar="ANN.json:IMAGES",
                   help="real labelled data replayed so the model does not forget (repeat "
                        "for several; default: the base model's own training sources, where "
                        "they exist on this machine)")
    p.add_argument("--replay-ratio", type=float, default=1.0,
                   help="replay samples per footage sample in each epoch (0 = footage only)")
    p.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate (cosine)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--freeze-bn", action="store_true",
                   help="keep BatchNorm statistics fixed while fine-tuning")
    p.add_argument("--aug", action="append", default=[], metavar="KEY=VALUE",
                   help="override one augmentation setting (keys of data.aug); adapt starts "
                        "from the model's recipe with lighter jitter for a fixed camera: "
                        "scale=0.25 rotation=15 half_body_prob=0 occluder_prob=0")
    smp = p.add_argument_group("frame sampling")
    smp.add_argument("--max-frames", type=int, default=s0.max_frames,
                     help="at most N frames per clip, spread evenly in time (0 = no limit)")
    smp.add_argument("--scene-change", type=float, default=s0.threshold,
                     help="keep a frame when at least this %% of a thumbnail's pixels "
                          "changed since the last kept frame (people moving in a fixed "
                          "camera's view: a few %%)")
    smp.add_argument("--min-gap", type=int, default=s0.min_gap,
                     help="video frames kept are at least N frames apart (an image "
                          "folder's images are separate captures: only --scene-change "
                          "thins them)")
    smp.add_argument("--max-gap", type=int, default=s0.max_gap,
                     help="keep a frame at least every N frames, even in a still scene")
    lab = p.add_argument_group("labels")
    lab.add_argument("--max-people", type=int, default=6, help="people labelled per frame")
    lab.add_argument("--min-joints", type=int, default=8,
                     help="a person is a label when the teacher is confident of N joints")
    lab.add_argument("--threshold", type=float, default=None,
                     help="teacher confidence at or above which a joint is labelled "
                          "(default 0.3 for MoveNet, 0.5 for BlazePose)")
    out = p.add_argument_group("output and evaluation")
    out.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                     help="int8: also calibrate on the footage (the FP32 model is kept as "
                          "ADAPTED.fp32.onnx)")
    out.add_argument("--target", default="tensorrt", choices=("tensorrt", "cpu"),
                     help="--precision int8: Q/DQ preset (as in 'edgepose calibrate')")
    out.add_argument("--check", default="auto", metavar="auto|none|ANN.json:IMAGES",
                     help="labelled real people to measure forgetting on (PCK@0.2, torso); "
                          "auto = LSP test in ../shared/data when it is there")
    out.add_argument("--check-limit", type=int, default=0, help="at most N --check people")
    out.add_argument("--work", default=None,
                     help="work folder: frames, labels, training state (default: "
                          "ADAPTED_adapt/ beside --out)")
    out.add_argument("--keep-worse", action="store_true",
                     help="write --out even if the adapted model agrees with the teacher less "
                          "than the base model on the held-out frames (default: refuse, keep "
                          "it in the work folder, exit 2)")
    out.add_argument("--fresh", action="store_true",
                     help="delete the work folder first instead of resuming in it")
    out.add_argument("--threads", type=int, default=1,
                     help="CPU threads for training and inference (1 is fastest on a busy "
                          "2-core machine)")
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def parse_aug(items: list[str]) -> dict:
    from edgepose.config import parse_value
    from edgepose.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--aug {item!r}: expected KEY=VALUE, e.g. rotation=10")
        out[key.strip()] = parse_value(value)
    return out


def run(args) -> int:
    from edgepose.app.adapting.job import adapt
    from edgepose.app.adapting.options import AdaptOptions
    from edgepose.data.footage import SamplingOptions

    opts = AdaptOptions(
        footage=list(args.footage), out=args.out, model=args.model, teacher=args.teacher,
        epochs=args.epochs, holdout=args.holdout, replay=list(args.replay),
        replay_ratio=args.replay_ratio, lr=args.lr, batch_size=args.batch_size,
        freeze_bn=args.freeze_bn, aug=parse_aug(args.aug),
        sampling=SamplingOptions(threshold=args.scene_change, min_gap=args.min_gap,
                                 max_gap=args.max_gap, max_frames=args.max_frames),
        max_people=args.max_people, min_joints=args.min_joints, threshold=args.threshold,
        work=args.work, fresh=args.fresh, precision=args.precision, target=args.target,
        check=args.check, check_limit=args.check_limit, threads=args.threads,
        seed=args.seed, progress=not args.no_progress, keep_worse=args.keep_worse)
    r = adapt(opts)
    print(f"wrote {args.out} (report: {opts.out.rsplit('.', 1)[0]}.adapt.json; "
          f"{r['total_s'] / 60:.1f} min, work folder {r['work']})")
    return 0

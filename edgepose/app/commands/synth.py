"""``edgepose synth``: write a synthetic COCO-format keypoint dataset (train + val)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth",
        help="write a synthetic COCO-format keypoint dataset",
        description=(
            "Render articulated human figures with exact sub-pixel keypoints and write them "
            "as a COCO person-keypoint dataset: OUT/images/{train,val}/*.jpg and "
            "OUT/annotations/person_keypoints_{train,val}.json. The same seed always gives "
            "the same dataset."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("out", metavar="OUT", help="output folder (created if missing)")
    p.add_argument("--num", type=int, default=500, help="number of training images")
    p.add_argument("--val", type=int, default=100, help="number of validation images")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--size", type=int, nargs="+", default=[192], metavar="PX",
                   help="image size: one number for square images, or W H")
    p.add_argument("--max-people", type=int, default=3,
                   help="most people in one image (most images have one)")
    p.add_argument("--multi-person", type=float, default=0.15,
                   help="fraction of images with more than one person")
    p.add_argument("--occluders", type=float, default=0.3,
                   help="probability that an object occludes part of a person")
    p.add_argument("--side-shade", type=float, default=0.35, metavar="K",
                   help="left limbs are drawn up to K lighter and right ones K darker "
                        "(relative; 0 = same colour on both sides)")
    return p


def run(args) -> int:
    from edgepose.data.synthetic import SynthConfig, generate_coco_dataset
    from edgepose.errors import DataError

    if len(args.size) not in (1, 2):
        raise DataError(f"--size takes one number or two (W H), got {args.size}")
    size = (args.size[0], args.size[0]) if len(args.size) == 1 else tuple(args.size)
    if args.num < 1 or args.val < 0:
        raise DataError(f"--num must be >= 1 and --val >= 0, got {args.num} and {args.val}")
    if not 0.0 <= args.multi_person <= 1.0 or not 0.0 <= args.occluders <= 1.0:
        raise DataError("--multi-person and --occluders are probabilities in [0, 1]")
    if not 0.0 <= args.side_shade < 1.0:
        raise DataError(f"--side-shade must be in [0, 1), got {args.side_shade}")
    if args.max_people < 1:
        raise DataError(f"--max-people must be >= 1, got {args.max_people}")
    cfg = SynthConfig(image_size=size, max_people=args.max_people,
                      multi_person_prob=args.multi_person, occluder_prob=args.occluders,
                      side_shade=(min(0.22, args.side_shade), args.side_shade))
    from pathlib import Path
    import shutil

    for split, n in (("train", args.num), ("val", args.val)):
        if n == 0:
            continue
        old = Path(args.out) / "images" / split
        if old.is_dir() and any(old.iterdir()):
            # a smaller rerun must not leave the previous run's extra images behind
            print(f"replacing the {sum(1 for _ in old.iterdir())} images in {old}")
            shutil.rmtree(old)
        path = generate_coco_dataset(args.out, n, seed=args.seed, image_size=size, split=split,
                                     config=cfg)
        print(f"wrote {n} {split} images and {path}")
    return 0

"""``edgepose label``: the teacher (MoveNet Thunder in-process, or MediaPipe BlazePose in its
own venv) labels real images or video."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from edgepose.engines.teacher import DEFAULT_TEACHER, TEACHER_NAMES

    p = subparsers.add_parser(
        "label",
        help="label real images / video / COCO person boxes with the teacher (MoveNet Thunder)",
        description=(
            "Run the teacher and write a COCO keypoint JSON: per-joint teacher confidence in "
            "'teacher_scores', v=2 where it is >= --threshold. The default teacher, "
            "movenet-thunder (Google MoveNet Thunder v4, Apache-2.0), runs in this process "
            "with ONNX Runtime once imported ('edgepose weights import movenet-thunder'); "
            "BlazePose full/heavy run in their own venv (--install-teacher) and their 33 "
            "landmarks map to COCO-17. SOURCE is an image folder, "
            "an image or a video; with --boxes it is the image folder of that COCO file and "
            "every person box is labelled. --fill keeps the file's human labels and fills "
            "only the joints it lacks, where the teacher agrees with them. Resumable: an "
            "interrupted run continues where it stopped (OUT.partial.jsonl)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", nargs="?",
                   help="image folder, image, video, or (with --boxes) the image root")
    p.add_argument("--out", metavar="FILE.json", help="output COCO keypoint JSON")
    p.add_argument("--teacher", default=DEFAULT_TEACHER, choices=TEACHER_NAMES,
                   help="movenet-thunder / movenet-lightning (in-process) or BlazePose "
                        "full / heavy (own venv)")
    p.add_argument("--boxes", metavar="COCO.json", help="label the person boxes of this file")
    p.add_argument("--fill", action="store_true",
                   help="with --boxes: fill only unlabelled joints, where the teacher agrees")
    p.add_argument("--agree", type=float, default=0.1,
                   help="--fill: accept a person if the teacher's median error on the "
                        "human-labelled joints is at most this fraction of the torso")
    p.add_argument("--threshold", type=float, default=None,
                   help="teacher confidence at or above which a joint is labelled (v=2); "
                        "default 0.3 for MoveNet (its heatmap peak), 0.5 for BlazePose")
    p.add_argument("--every", type=int, default=10, help="video: label every N-th frame")
    p.add_argument("--max-frames", type=int, default=0, help="video: at most N frames (0 = all)")
    p.add_argument("--install-teacher", action="store_true",
                   help="create the teacher venv (pip install mediapipe==0.10.21; with "
                        "--teacher heavy also the heavy model from npm) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    from pathlib import Path

    from edgepose.engines import teacher as T
    from edgepose.data.files import is_image_file, list_images
    from edgepose.errors import DataError

    if args.install_teacher:
        if args.teacher not in T.TEACHERS:
            raise DataError(f"--install-teacher is for BlazePose (full / heavy); "
                            f"{args.teacher} is imported with 'edgepose weights import "
                            f"{args.teacher}'")
        python = T.install(heavy=args.teacher == "heavy")
        print(f"teacher installed: {python}")
        return 0
    if not args.source or not args.out:
        raise DataError("give SOURCE and --out FILE.json (or --install-teacher)")
    if args.threshold is None:
        args.threshold = T.default_threshold(args.teacher)
    if not 0 < args.threshold <= 1 or not args.agree > 0 or args.every < 1:
        raise DataError("--threshold must be in (0, 1], --agree > 0 and --every >= 1")
    if args.fill and not args.boxes:
        raise DataError("--fill needs --boxes COCO.json (the human labels to fill in)")
    source = Path(args.source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    show = not args.no_progress
    with T.Teacher(args.teacher) as teacher:
        if args.boxes:
            if not source.is_dir():
                raise DataError(f"{source}: with --boxes, SOURCE is the COCO file's image folder")
            data = T.label_coco(args.boxes, source, args.out, teacher, fill=args.fill,
                                threshold=args.threshold, agree=args.agree, show=show)
        elif source.is_file() and not is_image_file(source):
            out = Path(args.out)
            frames_dir = out.with_name(out.stem + "_frames")
            files = T.extract_frames(source, frames_dir, args.every, args.max_frames)
            data = T.label_images(files, frames_dir, out, teacher, args.threshold, show)
        else:
            files = list_images(source)
            root = source if source.is_dir() else source.parent
            data = T.label_images(files, root, out=args.out, teacher=teacher,
                                  threshold=args.threshold, show=show)
    s = data["teacher"]
    if not s.get("images", 1) and s.get("skipped"):
        raise DataError(f"{source}: none of the {len(s['skipped'])} image(s) could be used "
                        f"({s['skipped'][0]})")
    extra = ""
    if "accepted" in s:
        extra = f", filled {s['accepted']} (teacher agreed within {s['agree']} torso)"
    n = s.get("people", s.get("images"))
    if s.get("skipped"):
        extra += f"; skipped {len(s['skipped'])} unusable image(s) (named above)"
    print(f"wrote {args.out}: teacher found {s['found']} of {n}{extra}")
    return 0

"""``edgepose predict``: keypoints for images, folders, globs or a video, as COCO results."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Run a pose model on an image, a folder of images, a glob ('photos/*.jpg') or a video,
headless, and write COCO keypoint results: one entry per person with image_id, file_name,
category_id 1, keypoints (x, y, score) x 17 in original-image pixels, score and bbox.
Without --boxes each image (or video frame) is one person box (the whole image); --multi
finds every person with the bundled detector; with --boxes COCO.json the person boxes of
that file are used (matched by file name) and its image ids are kept, so the results score
directly with pycocotools against that file.
Crops of several images go through the model in one batch (--batch). Unreadable images
are skipped and counted; the exit status is 2 only if nothing could be read.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("predict", help="keypoints for images / a folder / a video as "
                              "COCO results (+ overlays)", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="image, folder, glob pattern or video")
    p.add_argument("--model", default=None,
                   help="model file (.onnx / .engine / .pt; default: the bundled model)")
    p.add_argument("--out", default="results.json", metavar="FILE.json",
                   help="COCO keypoint results (default results.json)")
    p.add_argument("--save-dir", metavar="DIR",
                   help="also write overlay images (or DIR/<video>_pose.mp4) here")
    p.add_argument("--boxes", metavar="COCO.json",
                   help="person boxes (and image ids) from a COCO file, matched by file name")
    p.add_argument("--multi", action="store_true",
                   help="every person: boxes from the bundled person detector (NanoDet)")
    p.add_argument("--detector", default=None, metavar="FILE",
                   help="--multi: another detector file (.onnx with detector metadata, or a "
                        "TensorRT .engine built from it)")
    p.add_argument("--batch", type=int, default=8, help="crops per model call (default 8)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="where to run the model (default auto)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU inference threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def list_inputs(source: str):
    """(kind, items): ('images', [Path...]) or ('video', Path); DataError when unusable."""
    from pathlib import Path

    from edgepose.data.files import VIDEO_SUFFIXES, list_images

    if Path(source).is_file() and Path(source).suffix.lower() in VIDEO_SUFFIXES:
        return "video", Path(source)
    return "images", list_images(source)


def boxes_by_name(ann_file: str) -> dict:
    """file name -> (image_id, [boxes]) from a COCO keypoint file (non-crowd people)."""
    from pathlib import Path

    from edgepose.data.coco import load_coco_samples

    samples, images = load_coco_samples(ann_file, 17)
    out = {Path(im["file_name"]).name: (int(i), []) for i, im in images.items()}
    for s in samples:
        out[Path(s["file_name"]).name][1].append(s["bbox"])
    return out


def run(args) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    import cv2
    from tqdm import tqdm

    from edgepose.app.api import load
    from edgepose.errors import DataError
    from edgepose.fileio import atomic_write_bytes
    from edgepose.realtime.render import Renderer

    if args.batch < 1:
        raise DataError(f"--batch must be >= 1, got {args.batch}")
    if args.multi and args.boxes:
        raise DataError("--multi finds the boxes itself; drop --boxes or --multi")
    detector = None
    if args.multi:
        from edgepose.engines.detector import Detector

        detector = Detector(args.detector, device=args.device, threads=args.threads)
    kind, items = list_inputs(args.source)
    given = boxes_by_name(args.boxes) if args.boxes else None
    save = Path(args.save_dir) if args.save_dir else None
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    model = load(args.model, device=args.device, threads=args.threads)
    renderer = Renderer(model.limbs)
    results, skipped, n_images, people = [], [], 0, 0
    t0 = time.perf_counter()

    def flush(batch):
        nonlocal n_images, people
        if not batch:
            return
        poses = model.predict_many([b[2] for b in batch], [b[3] for b in batch],
                                   batch=args.batch)
        for (image_id, name, img, _), ps in zip(batch, poses):
            n_images += 1
            for p in ps:
                results.append({"image_id": image_id, "file_name": name, "category_id": 1,
                                **p.to_dict()})
                people += 1
                if save is not None:
                    renderer.draw_person(img, p.keypoints, p.scores, p.box)
            if save is not None and kind == "images":
                cv2.imwrite(str(save / Path(name).name), img)
            elif writer is not None:
                writer.write(img)
        batch.clear()

    pending: list = []
    writer = None
    bar = tqdm(desc="predict", unit="img", disable=args.no_progress)
    try:
        if kind == "images":
            bar.total = len(items)
            for i, f in enumerate(items, start=1):
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                bar.update(1)
                if img is None:
                    skipped.append(str(f))
                    tqdm.write(f"edgepose predict: skipping {f}: cannot be decoded",
                               file=sys.stderr)
                    continue
                image_id, boxes = i, None
                if detector is not None:
                    boxes = list(detector(img)[0])
                    if not boxes:
                        n_images += 1  # read, and nobody in it
                        continue
                if given is not None:
                    if f.name not in given:
                        skipped.append(str(f))
                        tqdm.write(f"edgepose predict: skipping {f}: not in {args.boxes}",
                                   file=sys.stderr)
                        continue
                    image_id, boxes = given[f.name]
                    if not boxes:
                        continue
                pending.append((image_id, str(f), img, boxes))
                if len(pending) >= args.batch:
                    flush(pending)
        else:
            cap = cv2.VideoCapture(str(items))
            if not cap.isOpened():
                raise DataError(f"{items}: video cannot be opened (missing codec or not a video)")
            bar.total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
            if save is not None:
                fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
                w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
                writer = cv2.VideoWriter(str(save / f"{items.stem}_pose.mp4"),
                                         cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            i = 0
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                boxes = list(detector(img)[0]) if detector is not None else None
                if boxes is not None and not boxes:
                    n_images += 1
                    if writer is not None:
                        writer.write(img)
                    i += 1
                    bar.update(1)
                    continue
                pending.append((i, f"{items.name}#{i}", img, boxes))
                i += 1
                bar.update(1)
                if len(pending) >= args.batch:
                    flush(pending)
            cap.release()
        flush(pending)
    finally:
        bar.close()
        if writer is not None:
            writer.release()
    dt = time.perf_counter() - t0
    if n_images == 0:
        raise DataError(f"{args.source}: no image could be read ({len(skipped)} skipped)")
    text = json.dumps(results).encode()
    atomic_write_bytes(args.out, lambda f: f.write(text))
    extra = f", skipped {len(skipped)}" if skipped else ""
    print(f"wrote {args.out}: {people} people in {n_images} "
          f"{'images' if kind == 'images' else 'frames'}{extra}, {n_images / dt:.1f} images/s"
          f" ({model.backend.name}, batch {args.batch})")
    return 0

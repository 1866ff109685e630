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
                   help="model file (.onnx / .engine / .pt) or a bundled model's name "
                        "(heatmap-128, dsnt-64, heatmap-64; default: the bundled heatmap-128)")
    p.add_argument("--server", default=None, metavar="URL",
                   help="run the model on a Triton server (grpc://HOST:8001 or "
                        "http://HOST:8000); with --model, the server's model must match it")
    p.add_argument("--out", default="results.json", metavar="FILE.json",
                   help="COCO keypoint results (default results.json)")
    p.add_argument("--save-dir", metavar="DIR",
                   help="also write overlay images (or DIR/<video>_pose.mp4) here")
    p.add_argument("--boxes", metavar="COCO.json",
                   help="person boxes (and image ids) from a COCO file, matched by file name")
    p.add_argument("--multi", action="store_true",
                   help="every person: boxes from the bundled person detector (NanoDet)")
    p.add_argument("--detector", default=None, metavar="FILE|URL",
                   help="--multi: another detector file (.onnx with detector metadata, or a "
                        "TensorRT .engine built from it), or a served one "
                        "(grpc://HOST:8001/person_detector)")
    p.add_argument("--detector-size", type=int, default=None, metavar="PX",
                   help="--multi: the detector's longer input side, a multiple of 32 (default "
                        "416; 320 is faster, 512-640 finds smaller people)")
    p.add_argument("--draw-min-score", type=float, default=0.3, metavar="S",
                   help="--save-dir overlays draw the people whose person score (detector box "
                        "score x mean joint score with --multi, else the mean joint score) is "
                        "at least S (default 0.3); the results keep every candidate")
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


def read_inputs(kind: str, items, skipped: list[str], bar):
    """(image_id, name, BGR image) of every readable input in order: a video's frames by
    :func:`edgepose.data.footage.read_frames` (ids from 0, names ``VIDEO#i``), or the images
    (ids from 1); an unreadable image is said on stderr and added to ``skipped``."""
    import sys

    from tqdm import tqdm

    if kind == "video":
        from edgepose.data.footage import read_frames

        for i, img in read_frames(items):
            bar.update(1)
            yield i, f"{items.name}#{i}", img
        return
    from edgepose.data.files import try_read_image

    for i, f in enumerate(items, start=1):
        img, why = try_read_image(f)
        bar.update(1)
        if img is None:
            skipped.append(str(f))
            tqdm.write(f"edgepose predict: skipping {f}: {why}", file=sys.stderr)
            continue
        yield i, str(f), img


class Batcher:
    """Images queued until ``size`` are waiting, then sent through the API's
    ``predict_many`` at once (crops of several images in one model call; detector people
    finished there: box score x joint score, OKS NMS); results and overlays in input order.
    Overlays draw the people whose person score is at least ``draw_min_score`` (the
    results keep every candidate: COCO AP ranks them)."""

    def __init__(self, model, size: int, overlay=None, draw_min_score: float = 0.0):
        self.model, self.size, self.overlay = model, size, overlay
        self.draw_min_score = float(draw_min_score)
        self.pending: list = []
        self.results: list[dict] = []
        self.images = self.people = 0

    def add(self, image_id: int, name: str, img, boxes) -> None:
        """``boxes``: a :class:`edgepose.topdown.PersonBoxes` (given or detector boxes;
        empty = nobody), or None for the whole image."""
        self.pending.append((image_id, name, img, boxes))
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        poses = self.model.predict_many([b[2] for b in batch], [b[3] for b in batch],
                                        batch=self.size)
        for (image_id, name, img, _), ps in zip(batch, poses):
            self.images += 1
            self.people += len(ps)
            for p in ps:
                self.results.append({"image_id": image_id, "file_name": name,
                                     "category_id": 1, **p.to_dict()})
            if self.overlay is not None:
                shown = [p for p in ps if p.score >= self.draw_min_score]
                self.overlay(name, self.model.draw(img, shown), shown)


def run(args) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    from tqdm import tqdm

    from edgepose.app.api import load
    from edgepose.errors import DataError
    from edgepose.fileio import atomic_write_bytes
    from edgepose.topdown import PersonBoxes

    if args.batch < 1:
        raise DataError(f"--batch must be >= 1, got {args.batch}")
    if args.multi and args.boxes:
        raise DataError("--multi finds the boxes itself; drop --boxes or --multi")
    kind, items = list_inputs(args.source)
    if args.save_dir:  # before any work, against the inputs
        from edgepose.fileio import check_output_dir

        # a video's overlay is <name>_pose.mp4: never the input; images keep their names
        check_output_dir(args.save_dir, "--save-dir", inputs=items if kind == "images" else [])
    detector = None
    if args.multi:
        from edgepose.engines.detector import Detector

        detector = Detector(args.detector, device=args.device, threads=args.threads,
                            size=args.detector_size, offline=True)
    given = boxes_by_name(args.boxes) if args.boxes else None
    fps, frames = video_props(items) if kind == "video" else (None, len(items))
    model = load(args.model, device=args.device, threads=args.threads, server=args.server)
    overlay, sink = overlay_writer(kind, items, args.save_dir, fps)
    batcher = Batcher(model, args.batch, overlay, draw_min_score=args.draw_min_score)
    skipped: list[str] = []
    t0 = time.perf_counter()
    bar = tqdm(desc="predict", unit="img", disable=args.no_progress, total=frames)
    interrupted = False
    try:
        for image_id, name, img in read_inputs(kind, items, skipped, bar):
            boxes = None
            if detector is not None:  # none found: still read (and drawn)
                boxes = PersonBoxes.detected(detector, img)
            if given is not None and kind == "images":  # --boxes: matched by file name
                short = Path(name).name
                if short not in given:
                    skipped.append(name)
                    tqdm.write(f"edgepose predict: skipping {name}: not in {args.boxes}",
                               file=sys.stderr)
                    continue
                image_id, gt = given[short]
                if not gt:
                    continue
                boxes = PersonBoxes.given(gt)
            batcher.add(image_id, name, img, boxes)
        batcher.flush()
    except KeyboardInterrupt:  # keep what is finished: the queued images are run, then saved
        interrupted = True
        batcher.flush()
    finally:
        bar.close()
        if sink is not None:
            sink.close()
    dt = time.perf_counter() - t0
    n_images = batcher.images
    if n_images == 0:
        raise DataError(f"{args.source}: no image could be read ({len(skipped)} skipped)")
    text = json.dumps(batcher.results).encode()
    atomic_write_bytes(args.out, lambda f: f.write(text))
    extra = f", skipped {len(skipped)}" if skipped else ""
    if kind == "video" and frames and n_images < frames and not interrupted:
        print(f"edgepose predict: warning: read {n_images} of the {frames} frames {items.name} "
              "declares; the file may be truncated", file=sys.stderr)
        extra += f", {frames - n_images} declared frames missing"
    if interrupted:
        print(f"edgepose predict: interrupted; wrote {args.out} with the {n_images} "
              f"{'images' if kind == 'images' else 'frames'} finished"
              + (f" of {frames}" if frames else ""), file=sys.stderr)
        return 130
    print(f"wrote {args.out}: {batcher.people} people in {n_images} "
          f"{'images' if kind == 'images' else 'frames'}{extra}, {n_images / dt:.1f} images/s"
          f" ({model.backend.name}, batch {args.batch})")
    return 0


def video_props(path) -> tuple[float, int | None]:
    """(frame rate, frame count) a video file declares: 30 FPS and None (unknown) where it
    does not say."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return cap.get(cv2.CAP_PROP_FPS) or 30.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    finally:
        cap.release()


def overlay_writer(kind: str, items, save_dir, fps: float | None = None):
    """(overlay(name, image, poses), video sink or None) for ``--save-dir``: a video's
    frames, every one, into ``DIR/<video>_pose.mp4`` at ``fps``
    (:class:`edgepose.realtime.render.VideoSink`); an image with somebody in it as
    ``DIR/<name>``. (None, None) without ``--save-dir``."""
    from pathlib import Path

    if not save_dir:
        return None, None
    save = Path(save_dir)
    save.mkdir(parents=True, exist_ok=True)
    if kind == "video":
        from edgepose.realtime.render import VideoSink

        sink = VideoSink(str(save / f"{items.stem}_pose.mp4"), fps)
        return (lambda name, img, poses: sink.write(img)), sink

    used: set[str] = set()

    def write_image(name: str, img, poses) -> None:
        import cv2

        if poses:  # an image where nobody was found gets no overlay file
            if not cv2.imwrite(str(save / unique_name(Path(name), used)), img):
                raise OSError(f"cannot write an overlay into {save}")

    return write_image, None


def unique_name(path, used: set[str]) -> str:
    """``path``'s file name, or, where an earlier input had the same name (two folders'
    ``img1.jpg``), its parent folders joined in front (``a__img1.jpg``) until unique."""
    parts = list(path.parts)
    for k in range(1, len(parts) + 1):
        name = "__".join(p for p in parts[-k:] if p not in ("/", ""))
        if name not in used:
            used.add(name)
            return name
    n = 2
    while f"{n}__{path.name}" in used:
        n += 1
    used.add(f"{n}__{path.name}")
    return f"{n}__{path.name}"

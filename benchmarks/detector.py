"""Multi-person on real photos: which person detector, top-down OKS AP against MoveNet
MultiPose, and live ``--multi`` (FPS, identity switches).

    python benchmarks/detector.py [--shared ../shared/data] [--threads 1] [--frames 60]
        [--reference DIR] [--vtest vtest.avi] [--out benchmarks/results/detector]

1. **Detectors** on the COCO val subsets (coco-mini + tiny-coco val2017: 49 images, the 114
   people with at least one labelled joint): recall at IoU 0.5 and 0.75, recall of the
   small ones (box area < 96^2 px, COCO's small + medium), false positives per image (a
   detection matching a labelled-but-unkeypointed or crowd person, IoU >= 0.5, is neither
   a hit nor a false positive), median ms per image, and whether every op passes
   edgepose's TensorRT check. The bundled NanoDet-g as it ran before (stretched to
   416 x 416) and now (aspect kept, longer side 320-640); with ``--reference DIR``
   (``scripts/convert_detector.py --candidates DIR``) CenterNet-MobileNetV3 512 and MoveNet
   MultiPose's person boxes too.
2. **OKS AP** (pycocotools, per subset) of ``edgepose predict --multi`` -- its own code:
   the detector, through the API's ``model.predict(image, detector=...)`` (the detector's
   crop padding, box x joint score, OKS NMS) -- against MoveNet MultiPose Lightning (256 x 256
   letterboxed, its own boxes and keypoints, ``--reference``); whole-image ms per photo
   (median over all photos and over photos with <= 3 labelled people).
3. **Live --multi**: frame time and FPS on 640 x 480 frames with 1, 3 and 6 real people
   (LSP test photos pasted side by side), detector every 10 frames vs every frame; with
   ``--vtest`` (OpenCV's vtest.avi, Debian ``opencv-doc``: a fixed camera, people walking)
   FPS, people tracked and identity switches: a track that ends while a new one starts
   within 10 frames on an overlapping box (IoU >= 0.3 with the ended track's last box) is
   counted as one switch (no identity labels exist for this clip; this counts the
   switches that fragment a person's track, not two people swapping ids).
Writes ``detector.json`` and ``detector.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgepose.engines.detection import iou_matrix, nms  # noqa: E402
from edgepose.engines.detector import DEFAULT_DETECTOR, META_KEY, Detector, static_copy  # noqa: E402
from edgepose.engines.timing import Stopwatch, latency_stats  # noqa: E402

SUBSETS = ("coco-mini", "tiny-coco")


def xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)


def val_images(shared: Path):
    """(subset, annotation file, image dict, BGR image, labelled people's boxes, ignored
    boxes) for every val image of the COCO subsets."""
    for sub in SUBSETS:
        ann = shared / sub / "annotations" / "person_keypoints_val2017.json"
        d = json.loads(ann.read_text())
        for im in d["images"]:
            img = cv2.imread(str(shared / sub / "val2017" / im["file_name"]))
            mine = [a for a in d["annotations"] if a["image_id"] == im["id"]]
            gt = np.array([a["bbox"] for a in mine if not a["iscrowd"]
                           and a["num_keypoints"] > 0]).reshape(-1, 4)
            ignore = np.array([a["bbox"] for a in mine if a["iscrowd"]
                               or a["num_keypoints"] == 0]).reshape(-1, 4)
            yield sub, ann, im, img, gt, ignore


# ----------------------------------------------------------------------------- detectors


class CenterNet:
    """CenterNet-MobileNetV3 (npm models/centernet.json, tf2onnx): RGB 0-255 stretched to
    512 x 512; its in-graph top-100 [x1, y1, x2, y2, score, class] (class 0 = person)."""

    def __init__(self, path: Path, threads: int, threshold: float = 0.3):
        from edgepose.engines.ort_session import make_session

        self.sess = make_session(path, "cpu", threads)
        self.threshold = threshold

    def __call__(self, img):
        h, w = img.shape[:2]
        x = cv2.resize(img, (512, 512), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
        d = self.sess.run(["tower_0/detections"],
                          {self.sess.get_inputs()[0].name: x[None].astype(np.float32)})[0][0]
        d = d[(d[:, 5] == 0) & (d[:, 4] >= self.threshold)]
        b = d[:, :4] * [w / 512, h / 512, w / 512, h / 512]
        keep = nms(b, d[:, 4], 0.6)
        b = b[keep]
        return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1), d[keep, 4]


class MultiPose:
    """MoveNet MultiPose Lightning (npm models/movenet-multipose.json, tf2onnx): RGB int32,
    letterboxed into ``size`` x ``size`` (top-left); up to 6 people, each 17 x (y, x,
    score) + box (ymin, xmin, ymax, xmax) + score, normalised to the input."""

    def __init__(self, path: Path, threads: int, threshold: float = 0.1, size: int = 256):
        from edgepose.engines.ort_session import make_session

        self.sess = make_session(path, "cpu", threads)
        self.threshold, self.size = threshold, size

    def people(self, img) -> np.ndarray:
        h, w = img.shape[:2]
        s = self.size / max(h, w)
        small = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        canvas[:small.shape[0], :small.shape[1]] = small
        out = self.sess.run(None, {self.sess.get_inputs()[0].name:
                                   canvas[None, :, :, ::-1].astype(np.int32)})[0][0]
        out = out[out[:, 55] >= self.threshold].astype(np.float64)
        out[:, :55] *= self.size / s  # normalised -> image px (score columns fixed below)
        out[:, 2:51:3] /= self.size / s
        return out

    def __call__(self, img):
        p = self.people(img)
        y1, x1, y2, x2 = p[:, 51], p[:, 52], p[:, 53], p[:, 54]
        return np.stack([x1, y1, x2 - x1, y2 - y1], 1), p[:, 55]

    def results(self, img, image_id: int) -> list[dict]:
        res = []
        for p in self.people(img):
            k = p[:51].reshape(17, 3)
            res.append({"image_id": image_id, "category_id": 1,
                        "keypoints": np.stack([k[:, 1], k[:, 0], k[:, 2]], 1).ravel().tolist(),
                        "score": float(p[55]),
                        "bbox": [float(p[52]), float(p[51]), float(p[54] - p[52]),
                                 float(p[53] - p[51])]})
        return res


def stretched_nanodet(tmp: Path) -> Path:
    """The bundled NanoDet as it ran before: a 416 x 416 copy whose metadata says stretch."""
    import onnx

    path = tmp / "nanodet_stretch416.onnx"
    static_copy(DEFAULT_DETECTOR, path, (416, 416))
    model = onnx.load(str(path))
    for p in model.metadata_props:
        if p.key == META_KEY:
            meta = json.loads(p.value)
            meta["resize"] = "stretch"
            meta["crop_padding"] = 1.25
            p.value = json.dumps(meta)
    onnx.save(model, str(path))
    return path


def detector_row(name: str, det, shared: Path, onnx_path: Path | None) -> dict:
    hit50 = hit75 = fp = n = n_small = hit_small = n_img = 0
    watch = Stopwatch()
    for _, _, _, img, gt, ignore in val_images(shared):
        with watch:
            boxes, scores = det(img)
        p, g, gi = xyxy(boxes), xyxy(gt), xyxy(ignore)
        m = iou_matrix(p, g) if len(p) and len(g) else np.zeros((len(p), len(g)))
        mi = iou_matrix(p, gi) if len(p) and len(gi) else np.zeros((len(p), len(gi)))
        small = gt[:, 2] * gt[:, 3] < 96 ** 2
        used, used75 = set(), set()
        for i in np.argsort(-np.asarray(scores)):
            free = [j for j in np.argsort(-m[i]) if j not in used and m[i, j] >= 0.5]
            if free:
                used.add(free[0])
                if m[i, free[0]] >= 0.75:
                    used75.add(free[0])
            elif not (mi.shape[1] and mi[i].max() >= 0.5):
                fp += 1
        hit50, hit75 = hit50 + len(used), hit75 + len(used75)
        n, n_img = n + len(g), n_img + 1
        n_small += int(small.sum())
        hit_small += sum(1 for j in used if small[j])
    trt = None
    if onnx_path is not None:
        from edgepose.engines.trt_compat import check_onnx_file

        trt = check_onnx_file(onnx_path).ok
    return {"detector": name, "images": n_img, "people": n, "small_people": n_small,
            "recall50": hit50 / n, "recall75": hit75 / n, "small_recall50": hit_small / n_small,
            "fp_per_image": fp / n_img, "ms_median": latency_stats(watch.seconds)["median"], "trt_ops_ok": trt}


def detectors(shared: Path, threads: int, reference: Path | None, tmp: Path) -> list[dict]:
    rows = [detector_row("NanoDet-g, stretched to 416x416 (before)",
                         Detector(stretched_nanodet(tmp), threads=threads), shared,
                         DEFAULT_DETECTOR)]
    for size in (320, 416, 512, 640):
        rows.append(detector_row(f"NanoDet-g, aspect kept, long side {size}"
                                 + (" (default)" if size == 416 else ""),
                                 Detector(threads=threads, size=size), shared, DEFAULT_DETECTOR))
    rows.append(detector_row("NanoDet-g, aspect kept, 416, threshold 0.25",
                             Detector(threads=threads, threshold=0.25), shared, None))
    if reference is not None:
        c = reference / "centernet-tf.onnx"
        rows.append(detector_row("CenterNet-MobileNetV3 512 (threshold 0.3)",
                                 CenterNet(c, threads), shared, c))
        mp = reference / "movenet-multipose-tf.onnx"
        rows.append(detector_row("MoveNet MultiPose 256 boxes (score 0.1, <= 6 people)",
                                 MultiPose(mp, threads), shared, mp))
    return rows


# ----------------------------------------------------------------------------- OKS AP


def coco_ap(ann: Path, results: list[dict]) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(results), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def ap_row(name: str, run_image, shared: Path) -> dict:
    """``run_image(img, image_id)`` -> COCO results of one photo."""
    results = {s: [] for s in SUBSETS}
    anns, times, few = {}, [], []
    watch = Stopwatch()
    for sub, ann, im, img, gt, _ in val_images(shared):
        anns[sub] = ann
        with watch:
            results[sub] += run_image(img, im["id"])
        ms = watch.last_ms
        times.append(ms)
        if len(gt) <= 3:
            few.append(ms)
    row = {"system": name, "ms_median": statistics.median(times),
           "ms_median_le3": statistics.median(few), "photos_le3": len(few)}
    for sub in SUBSETS:
        row[sub] = coco_ap(anns[sub], results[sub])
    return row


def topdown(model, det, finish: bool = True):
    """``edgepose predict --multi``'s own path for one photo, through the API it uses:
    ``model.predict(image, detector=det)`` (the detector file's crop padding, box score x
    joint score, OKS NMS); ``finish=False`` is the path before issue 23 (the detector's boxes
    cropped as given boxes: padding 1.25, joint score only, no NMS)."""

    def run_image(img, image_id):
        if finish:
            people = model.predict(img, detector=det)
        else:
            boxes, _ = det(img)
            people = model.predict(img, boxes=list(boxes))
        return [{"image_id": image_id, "category_id": 1, **p.to_dict()} for p in people]

    return run_image


def ap_table(shared: Path, threads: int, reference: Path | None, tmp: Path) -> list[dict]:
    from edgepose.app.api import load

    model = load(None, device="cpu", threads=threads)
    name = Path(model.path).stem
    rows = [ap_row(f"predict --multi before (stretched 416, padding 1.25, joint score) + {name}",
                   topdown(model, Detector(stretched_nanodet(tmp), threads=threads), False),
                   shared)]
    for size in (320, 416):
        rows.append(ap_row(f"predict --multi (NanoDet {size}, aspect kept) + {name}",
                           topdown(model, Detector(threads=threads, size=size, offline=True)),
                           shared))
    if reference is not None:
        mp = MultiPose(reference / "movenet-multipose-tf.onnx", threads)
        rows.append(ap_row("MoveNet MultiPose Lightning 256 (bottom-up, score 0.1)",
                           mp.results, shared))
    return rows


# ----------------------------------------------------------------------------- live


def people_video(n: int, frames: int, out: Path, shared: Path) -> Path:
    canvas = np.full((480, 640, 3), 90, np.uint8)
    w = 640 // n
    for i in range(n):
        img = cv2.imread(str(shared / "lsp" / "images" / f"im{1002 + i:04d}.jpg"))
        s = min(w / img.shape[1], 400 / img.shape[0], 1.5)  # LSP photos are ~100x170 px
        small = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)))
        x, y = i * w + (w - small.shape[1]) // 2, 40
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    path = out / f"people{n}.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for _ in range(frames):
        vw.write(canvas)
    vw.release()
    return path


def live_run(video: Path, every: int, threads: int, tmp: Path):
    from edgepose.bundled import DEFAULT_MODEL
    from edgepose.realtime.pipeline import PipelineOptions
    from edgepose.realtime.runner import RunOptions, run_app

    log, kp = tmp / f"log_{video.stem}_{every}.jsonl", tmp / f"kp_{video.stem}_{every}.jsonl"
    opts = RunOptions(model=str(DEFAULT_MODEL), source=str(video), headless=True, quiet=True,
                      threads=threads, log=str(log), keypoints=str(kp),
                      pipeline=PipelineOptions())
    opts.track.multi, opts.track.detect_every = True, every
    opts.capture.every_frame = True
    with Stopwatch() as sw:
        run_app(opts)
    wall = sw.seconds[-1]
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    poses = [json.loads(x) for x in kp.read_text().splitlines()]
    stage = [r.get("pre_ms", 0) + r.get("inf_ms", 0) + r.get("post_ms", 0) for r in recs]
    return {"frames": len(recs), "people_tracked_median": statistics.median(
                [len(p["people"]) for p in poses]) if poses else 0,
            "frame_ms_median": statistics.median(stage), "fps": len(recs) / wall,
            "id_switches": id_switches(poses), "tracks": len({q["track_id"] for p in poses
                                                              for q in p["people"]})}


def id_switches(poses: list[dict], gap: int = 10, iou: float = 0.3) -> int:
    """Tracks that end while a new track starts within ``gap`` frames on an overlapping
    box (module docstring)."""
    first, last = {}, {}
    for i, rec in enumerate(poses):
        for p in rec["people"]:
            first.setdefault(p["track_id"], (i, p["box"]))
            last[p["track_id"]] = (i, p["box"])
    end = len(poses) - 1
    switches = 0
    for tid, (i_end, box) in last.items():
        if i_end == end:
            continue
        for other, (i_start, b2) in first.items():
            if other != tid and i_end < i_start <= i_end + gap and \
                    iou_matrix(xyxy(np.array(box)), xyxy(np.array(b2)))[0, 0] >= iou:
                switches += 1
                break
    return switches


def live(shared: Path, frames: int, threads: int, vtest: Path | None, tmp: Path) -> list[dict]:
    rows = []
    for n in (1, 3, 6):
        video = people_video(n, frames, tmp, shared)
        for every in (10, 1):
            rows.append({"clip": f"{n} pasted LSP people", "detect_every": every,
                         **live_run(video, every, threads, tmp)})
    if vtest is not None:
        for every in (10, 1):
            rows.append({"clip": "vtest.avi (795 frames, 768x576)", "detect_every": every,
                         **live_run(vtest, every, threads, tmp)})
    return rows


# ----------------------------------------------------------------------------- report


def report(result: dict) -> str:
    md = [f"Multi-person benchmark ({result['machine']}; ONNX Runtime {result['threads']} "
          "thread; one run). COCO val subsets: coco-mini + tiny-coco val2017.", "",
          "### Person detectors", "",
          "| detector | recall IoU 0.5 | recall IoU 0.75 | small-person recall | FP / image "
          "| ms / image | TensorRT ops |", "|---|---|---|---|---|---|---|"]
    for r in result["detectors"]:
        trt = {True: "ok", False: "no", None: "(same graph)"}[r["trt_ops_ok"]]
        md.append(f"| {r['detector']} | {r['recall50']:.3f} | {r['recall75']:.3f} | "
                  f"{r['small_recall50']:.3f} | {r['fp_per_image']:.2f} | "
                  f"{r['ms_median']:.1f} | {trt} |")
    d0 = result["detectors"][0]
    md += ["", f"{d0['images']} images, {d0['people']} labelled people ({d0['small_people']} "
           "with box area < 96^2 px).", "", "### OKS AP (pycocotools)", "",
           "| system | coco-mini AP / AP50 | tiny-coco AP / AP50 | ms / photo (median) | "
           "ms / photo with <= 3 people |", "|---|---|---|---|---|"]
    for r in result["ap"]:
        a, b = r["coco-mini"], r["tiny-coco"]
        md.append(f"| {r['system']} | {a[0]:.3f} / {a[1]:.3f} | {b[0]:.3f} / {b[1]:.3f} | "
                  f"{r['ms_median']:.1f} | {r['ms_median_le3']:.1f} ({r['photos_le3']} photos) |")
    md += ["", "### Live --multi", "",
           "| clip | detector every | people tracked (median) | model+detector ms / frame "
           "(median) | FPS | tracks | identity switches |", "|---|---|---|---|---|---|---|"]
    for r in result["live"]:
        md.append(f"| {r['clip']} | {r['detect_every']} frame(s) | "
                  f"{r['people_tracked_median']:.0f} | {r['frame_ms_median']:.1f} | "
                  f"{r['fps']:.1f} | {r['tracks']} | {r['id_switches']} |")
    return "\n".join(md) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--reference", type=Path, metavar="DIR",
                    help="CenterNet / MultiPose conversions (scripts/convert_detector.py "
                         "--candidates DIR)")
    ap.add_argument("--vtest", type=Path, help="OpenCV's vtest.avi (Debian opencv-doc)")
    ap.add_argument("--only", choices=["detectors", "ap", "live"], action="append")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "detector")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    only = set(args.only or ["detectors", "ap", "live"])
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    result = {"machine": machine, "threads": args.threads, "detectors": [], "ap": [],
              "live": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "detectors" in only:
            result["detectors"] = detectors(args.shared, args.threads, args.reference, tmp)
        if "ap" in only:
            result["ap"] = ap_table(args.shared, args.threads, args.reference, tmp)
        if "live" in only:
            result["live"] = live(args.shared, args.frames, args.threads, args.vtest, tmp)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detector.json").write_text(json.dumps(result, indent=2) + "\n")
    if result["detectors"] and result["ap"] and result["live"]:
        (args.out / "detector.md").write_text(report(result))
        print(report(result))
    else:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

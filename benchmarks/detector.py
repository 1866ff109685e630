"""The person detector and --multi: recall / false positives, and frame time by people count.

    python benchmarks/detector.py [--shared ../shared/data] [--threads 1] [--frames 60]

1. Recall and false positives per image at IoU 0.5 on the COCO val subsets (coco-mini +
   tiny-coco val2017, people with at least one labelled joint; unlabelled people the
   detector finds count as false positives, so the FP number is an upper bound).
2. ``--multi`` frame time (the pipeline's capture-to-render, median) on 640x480 frames with
   1, 3 and 6 real people (LSP test photos im1002.. pasted side by side; some photos hold a
   bystander too, so more people can be tracked than pasted), the detector run every 10
   frames (the default) vs every frame, and the detector's own time per call.
Writes ``detector.json`` and ``detector.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgepose.engines.detection import iou_matrix  # noqa: E402
from edgepose.engines.detector import Detector  # noqa: E402


def recall(det: Detector, shared: Path) -> dict:
    tp = fp = n_gt = n_img = 0
    times = []
    for sub in ("coco-mini", "tiny-coco"):
        d = json.loads((shared / sub / "annotations" / "person_keypoints_val2017.json").read_text())
        for im in d["images"]:
            img = cv2.imread(str(shared / sub / "val2017" / im["file_name"]))
            t0 = time.perf_counter()
            boxes, scores = det(img)
            times.append((time.perf_counter() - t0) * 1000)
            gt = np.array([a["bbox"] for a in d["annotations"] if a["image_id"] == im["id"]
                           and not a["iscrowd"] and a["num_keypoints"] > 0]).reshape(-1, 4)
            g = np.concatenate([gt[:, :2], gt[:, :2] + gt[:, 2:]], 1)
            p = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
            m = iou_matrix(p, g) if len(p) and len(g) else np.zeros((len(p), len(g)))
            used = set()
            for i in np.argsort(-scores):
                j = int(np.argmax(m[i])) if m.shape[1] else -1
                if j >= 0 and m[i, j] >= 0.5 and j not in used:
                    used.add(j)
                    tp += 1
                else:
                    fp += 1
            n_gt += len(g)
            n_img += 1
    return {"images": n_img, "people": n_gt, "found": tp, "recall": tp / max(n_gt, 1),
            "false_positives": fp, "fp_per_image": fp / max(n_img, 1),
            "detector_ms_median": statistics.median(times)}


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


def multi_times(shared: Path, frames: int, threads: int) -> list[dict]:
    from edgepose.bundled import DEFAULT_MODEL
    from edgepose.realtime.runner import RunOptions, run_app
    from edgepose.realtime.pipeline import PipelineOptions

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 3, 6):
            video = people_video(n, frames, Path(tmp), shared)
            for every in (10, 1):
                people = []
                log = Path(tmp) / f"log{n}_{every}.jsonl"
                opts = RunOptions(model=str(DEFAULT_MODEL), source=str(video), headless=True,
                                  quiet=True, threads=threads, log=str(log),
                                  pipeline=PipelineOptions(
                                      on_frame=lambda f, p: people.append(len(p))))
                opts.track.multi, opts.track.detect_every = True, every
                opts.capture.every_frame = True
                t0 = time.perf_counter()
                run_app(opts)
                wall = time.perf_counter() - t0
                recs = [json.loads(x) for x in log.read_text().splitlines()]
                inf = [r.get("pre_ms", 0) + r.get("inf_ms", 0) + r.get("post_ms", 0)
                       for r in recs]
                rows.append({"people_in_frame": n, "detect_every": every,
                             "people_tracked_median": statistics.median(people),
                             "frame_ms_median": statistics.median(inf),
                             "fps": len(recs) / wall})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "detector")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    det = Detector(threads=args.threads)
    r = recall(det, args.shared)
    rows = multi_times(args.shared, args.frames, args.threads)
    machine = f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores"
    result = {"machine": machine, "threads": args.threads, "recall": r, "multi": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detector.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"Person detector (NanoDet-g 416, ONNX Runtime, {args.threads} thread; {machine}).", "",
          f"COCO val subsets: {r['images']} images, {r['people']} labelled people: recall "
          f"{r['recall']:.2f} ({r['found']} found) at IoU 0.5, {r['fp_per_image']:.2f} "
          f"false positives per image (unlabelled people included), detector "
          f"{r['detector_ms_median']:.1f} ms per image (median).", "",
          "| people in frame | detector every | people tracked (median) | model+detector ms "
          "per frame (median) | FPS |", "|---|---|---|---|---|"]
    for row in rows:
        md.append(f"| {row['people_in_frame']} | {row['detect_every']} frame(s) | "
                  f"{row['people_tracked_median']:.0f} | {row['frame_ms_median']:.1f} | "
                  f"{row['fps']:.1f} |")
    (args.out / "detector.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

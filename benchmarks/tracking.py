"""Identity on video: a clip with ground truth, and OpenCV's vtest.avi.

    python benchmarks/tracking.py [--vtest /usr/share/doc/opencv-doc/examples/data/vtest.avi]

1. **A clip with ground-truth identities** (:func:`make_gt_clip`): real people -- the 12
   committed LSP test photos, each cropped around its labelled joints -- pasted onto a real
   background (a committed COCO photo, blurred and darkened so its own people are not
   detected) and moved along known paths: two people walking side by side, one crossing
   them the other way, one standing, one walking in late. Its boxes are the ground truth.
   ``edgepose run --multi``'s tracker (through ``model.track(multi=True)``, the same
   pipeline) is scored with ``motmetrics`` (MIT): MOTA, IDF1, identity switches,
   fragmentations.
2. **vtest.avi** (Debian ``opencv-doc``, 795 frames, 768x576, a fixed camera, pedestrians):
   no identity labels exist, so it reports track ids, ids living 5 frames or fewer, and
   people per frame.

Writes ``benchmarks/results/tracking/results.{json,md}``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LSP = ROOT / "tests" / "assets" / "lsp"
BACKGROUND = ROOT / "tests" / "assets" / "coco" / "000000160012.jpg"
SIZE = (640, 360)  # w, h
FRAMES = 90


def person_crop(name: str, height: int) -> np.ndarray:
    """The LSP photo cropped to its labelled joints (+12 %), resized to ``height`` px."""
    rows = json.loads((LSP / "joints_subset.json").read_text())
    img = cv2.imread(str(LSP / name))
    pts = np.asarray(rows[name], float).reshape(-1, 3)
    pts = pts[pts[:, 2] >= 0][:, :2] if pts.shape[1] == 3 else pts
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.12 * (hi - lo)
    x0, y0 = np.maximum(lo - pad, 0).astype(int)
    x1, y1 = np.minimum(hi + pad, img.shape[1::-1]).astype(int)
    crop = img[y0:y1, x0:x1]
    w = max(8, int(round(crop.shape[1] * height / crop.shape[0])))
    return cv2.resize(crop, (w, height), interpolation=cv2.INTER_AREA)


# Variants of the clip (walking speed x, the crossing person's path shifted by px): one clip
# turns on how one crossing resolves; six tell a tracker change from a coin flip.
VARIANTS = [(speed, shift) for speed in (0.7, 1.0, 1.3) for shift in (0, 15)]


def paths(t: int, speed: float = 1.0, shift: float = 0.0) -> dict[int, tuple[float, float, str, int]]:
    """Ground-truth id -> (x centre, y bottom, LSP photo, height) at frame ``t`` (only the
    people in the frame); ``speed`` scales time, ``shift`` moves the crossing person."""
    if speed != 1.0:
        t = int(round(t * speed))
    out = {1: (60 + 5.0 * t, 330.0, "im1001.jpg", 150),       # walks right
           2: (110 + 5.0 * t, 320.0, "im1004.jpg", 140),      # beside 1, walks right
           3: (600 - 6.0 * t + shift, 340.0, "im1007.jpg", 160),  # crosses them, walks left
           4: (320.0, 200.0, "im1009.jpg", 120)}              # stands at the back
    if t >= 30:
        out[5] = (640 - 4.0 * (t - 30), 250.0, "im1011.jpg", 130)  # walks in late
    return {k: v for k, v in out.items() if -20 < v[0] < SIZE[0] + 20}


def make_gt_clip(path: Path, speed: float = 1.0,
                 shift: float = 0.0) -> dict[int, dict[int, list[float]]]:
    """Write the clip (MJPG .avi) and return frame -> {id: [x, y, w, h]} (visible part)."""
    bg = cv2.resize(cv2.imread(str(BACKGROUND)), SIZE)
    bg = (cv2.GaussianBlur(bg, (0, 0), 9) * 0.6).astype(np.uint8)
    crops: dict[tuple[str, int], np.ndarray] = {}
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    truth = {}
    for t in range(FRAMES):
        frame = bg.copy()
        boxes = {}
        # farther (higher on screen) people first, so nearer ones occlude them
        for pid, (cx, bottom, name, h) in sorted(paths(t, speed, shift).items(),
                                                 key=lambda kv: kv[1][1]):
            crop = crops.setdefault((name, h), person_crop(name, h))
            x0, y0 = int(round(cx - crop.shape[1] / 2)), int(round(bottom - h))
            xs0, ys0 = max(x0, 0), max(y0, 0)
            xs1, ys1 = min(x0 + crop.shape[1], SIZE[0]), min(y0 + h, SIZE[1])
            if xs1 - xs0 < 8:
                continue
            frame[ys0:ys1, xs0:xs1] = crop[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
            boxes[pid] = [float(xs0), float(ys0), float(xs1 - xs0), float(ys1 - ys0)]
        w.write(frame)
        truth[t] = boxes
    w.release()
    return truth


def track_clip(video: Path, threads: int = 1, **track) -> list[dict[int, list[float]]]:
    """The live tracker on ``video``: per frame {track id: crop box}."""
    import edgepose

    model = edgepose.load(threads=threads)
    out = []
    for _frame, poses in model.track(str(video), multi=True, **track):
        out.append({int(p.track_id): [float(v) for v in p.box] for p in poses})
    model.close()
    return out


def centre_distances(gt: list, hyp: list, max_d: float = 0.35) -> np.ndarray:
    """Distance between box centres over the ground-truth box's height; NaN (no match)
    above ``max_d``. Centres, not IoU: a tracked box is the crop box (keypoints x 1.25,
    then the crop padding), larger than the pasted person's box by design, so IoU would
    score box conventions rather than identity."""
    out = np.full((len(gt), len(hyp)), np.nan)
    for i, a in enumerate(gt):
        ca = np.array([a[0] + a[2] / 2, a[1] + a[3] / 2])
        for j, b in enumerate(hyp):
            d = np.linalg.norm(ca - [b[0] + b[2] / 2, b[1] + b[3] / 2]) / max(a[3], 1.0)
            if d <= max_d:
                out[i, j] = d
    return out


def identity_metrics(truth, tracked) -> dict:
    """MOTA, IDF1, identity switches, fragmentations (motmetrics; a match is a box centre
    within 0.35 of the person's height)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for t in range(len(tracked)):
        gt, hyp = truth.get(t, {}), tracked[t]
        acc.update(list(gt), list(hyp), centre_distances(list(gt.values()), list(hyp.values())))
    mh = mm.metrics.create()
    s = mh.compute(acc, metrics=["mota", "idf1", "num_switches", "num_fragmentations",
                                 "num_unique_objects", "mostly_tracked"], name="clip")
    return {k: float(s[k].iloc[0]) for k in s.columns}


def vtest_stats(video: Path, threads: int = 1, **track) -> dict:
    tracked = track_clip(video, threads, **track)
    life = collections.Counter(i for frame in tracked for i in frame)
    short = sum(1 for n in life.values() if n <= 5)
    return {"frames": len(tracked), "ids": len(life), "short_ids": short,
            "short_fraction": short / max(len(life), 1),
            "people_per_frame": sum(len(f) for f in tracked) / max(len(tracked), 1)}


def parse_sets(items: list[str]) -> dict:
    """``KEY=VALUE`` strings -> TrackOptions overrides, each value of its field's type."""
    from edgepose.realtime.tracking import TrackOptions

    defaults, out = TrackOptions(), {}
    for item in items:
        key, _, value = item.partition("=")
        if not hasattr(defaults, key):
            sys.exit(f"--set {item}: TrackOptions has no field {key!r}")
        out[key] = type(getattr(defaults, key))(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vtest", type=Path, default=Path(
        "/usr/share/doc/opencv-doc/examples/data/vtest.avi"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tracking")
    ap.add_argument("--no-vtest", action="store_true")
    ap.add_argument("--label", default="defaults", help="this run's row in the results")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a TrackOptions field for this run (e.g. velocity_smooth=0)")
    args = ap.parse_args()
    track = parse_sets(args.set)
    run: dict = {"settings": track}
    with tempfile.TemporaryDirectory() as tmp:
        variants = []
        for speed, shift in VARIANTS:
            clip = Path(tmp) / f"gt_{speed}_{shift}.avi"
            truth = make_gt_clip(clip, speed, shift)
            m = identity_metrics(truth, track_clip(clip, args.threads, **track))
            variants.append({"speed": speed, "shift": shift, **m})
            if (speed, shift) == (1.0, 0):
                run["gt_clip"] = m
        run["variants"] = variants
        run["variants_mean"] = {k: float(np.mean([v[k] for v in variants]))
                                for k in ("mota", "idf1")}
        run["variants_mean"]["num_switches"] = float(sum(v["num_switches"] for v in variants))
    if args.vtest.is_file() and not args.no_vtest:
        run["vtest"] = vtest_stats(args.vtest, args.threads, **track)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    result = json.loads(path.read_text()) if path.is_file() else {}
    if "runs" not in result:  # a file from before the variants: start over
        result = {"runs": {}}
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    result["runs"][args.label] = run
    path.write_text(json.dumps(result, indent=1))
    lines = ["Identity on video: `edgepose run --multi`'s tracker (the bundled model, ONNX "
             f"Runtime {args.threads} thread; {result['machine']}); one row per "
             "`python benchmarks/tracking.py --label L [--set KEY=VALUE]` run.", "",
             f"Ground-truth clip ({FRAMES} frames, five real people on a real background; a "
             "match is a box centre within 0.35 of the person's height; motmetrics), and "
             f"the mean over its {len(VARIANTS)} variants (walking speed x0.7 / x1 / x1.3, "
             "the crossing path shifted 0 / 15 px):", "",
             "| tracker | settings | MOTA | IDF1 | ID switches | variants: mean MOTA | mean "
             "IDF1 | ID switches (sum) |", "|---|---|---|---|---|---|---|---|"]
    for label, r in result["runs"].items():
        g, v = r["gt_clip"], r["variants_mean"]
        sets = ", ".join(f"{k}={x}" for k, x in r["settings"].items()) or "defaults"
        lines.append(f"| {label} | {sets} | {g['mota']:.3f} | {g['idf1']:.3f} | "
                     f"{g['num_switches']:.0f} | {v['mota']:.3f} | {v['idf1']:.3f} | "
                     f"{v['num_switches']:.0f} |")
    vt = [(label, r["vtest"]) for label, r in result["runs"].items() if "vtest" in r]
    if vt:
        lines += ["", "OpenCV's vtest.avi (795 frames, 768x576; no identity labels):", "",
                  "| tracker | frames | track ids | ids living <= 5 frames | people / frame |",
                  "|---|---|---|---|---|"]
        for label, v in vt:
            lines.append(f"| {label} | {v['frames']} | {v['ids']} | {v['short_ids']} "
                         f"({100 * v['short_fraction']:.0f} %) | {v['people_per_frame']:.2f} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

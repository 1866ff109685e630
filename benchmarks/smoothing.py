"""One Euro smoothing on real motion: lag and jitter against a pseudo ground truth.

    python benchmarks/smoothing.py [--video /usr/share/doc/opencv-doc/examples/data/vtest.avi]

1. ``edgepose run --multi --no-smooth --keypoints`` on the clip (OpenCV's vtest.avi: 10 FPS,
   768x576, pedestrians) gives every track's raw keypoints per frame, with the frame's video
   time and the box it was cropped from. Smoothing is the pipeline's last stage and nothing
   downstream feeds back into tracking (boxes follow the raw pose), so replaying the One
   Euro filter over the logged raw poses gives exactly what ``run`` would have drawn, for
   any setting (the filter restarts where a track was missing a frame, as the tracker's
   ``smooth = False`` does).
2. **Pseudo ground truth**: MoveNet Thunder (256 px, the teacher) on the full-resolution
   frame cropped around the same box, then smoothed offline with a zero-phase (centred)
   Gaussian over time (sigma ``--gt-sigma`` frames): no lag, less jitter than any causal
   filter can have.
3. For each setting, over joints both models see (scores >= 0.3), px in frame pixels:
   **error** (median distance to the pseudo ground truth), **lag** (median component of
   ground truth minus smoothed along the ground truth's direction of motion, joints moving
   >= 30 px/s; positive = trailing) and **jitter** (median frame-to-frame change of the
   residual smoothed - ground truth: wobble that the true motion does not have). The
   setting with the least error + jitter is the chosen default.

Writes ``benchmarks/results/smoothing/results.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
MIN_SCORE = 0.3
MOVING = 30.0  # px/s: joints slower than this do not count for lag
MIN_CUTOFFS = (0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.5, 4.0)
BETAS = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3)
D_CUTOFFS = (0.3, 1.0)
OLD_DEFAULTS = (0.2, 0.01, 0.3)  # min_cutoff, beta, d_cutoff before this benchmark


def raw_tracks(video: Path, frames: int, work: Path, threads: int) -> list[dict]:
    """The keypoint log of ``edgepose run --multi --no-smooth`` on ``video``."""
    log = work / "kp.jsonl"
    cmd = [sys.executable, "-m", "edgepose", "run", "--source", str(video), "--multi",
           "--headless", "--no-smooth", "--keypoints", str(log), "--frames", str(frames),
           "--threads", str(threads), "--quiet"]
    subprocess.run(cmd, check=True)
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def series(records: list[dict]) -> dict[int, dict]:
    """track id -> {"frame": (T,), "t": (T,), "raw": (T, K, 2), "score": (T, K),
    "box": (T, 4)} in frame order."""
    out: dict[int, dict] = {}
    for rec in records:
        for p in rec["people"]:
            s = out.setdefault(p["track_id"], {"frame": [], "t": [], "raw": [], "score": [],
                                               "box": []})
            kp = np.asarray(p["keypoints"], float)
            s["frame"].append(rec["frame"])
            s["t"].append(rec["t"])
            s["raw"].append(np.asarray(p["raw"], float))
            s["score"].append(kp[:, 2])
            s["box"].append(p["box"])
    return {k: {n: np.asarray(v, float) for n, v in s.items()} for k, s in out.items()}


def thunder_truth(video: Path, tracks: dict[int, dict], threads: int) -> None:
    """Adds "gt_raw" (T, K, 2) and "gt_score" (T, K): Thunder on each logged box of the
    full-resolution frame."""
    import cv2
    from tqdm import tqdm

    from edgepose.engines.teacher import MoveNetTeacher
    from edgepose.topdown import PersonBoxes, crop_people, crop_to_image

    wanted: dict[int, list[tuple[int, int]]] = {}
    for tid, s in tracks.items():
        s["gt_raw"] = np.full_like(s["raw"], np.nan)
        s["gt_score"] = np.zeros_like(s["score"])
        for i, f in enumerate(s["frame"].astype(int)):
            wanted.setdefault(f, []).append((tid, i))
    cap = cv2.VideoCapture(str(video))
    with MoveNetTeacher("movenet-thunder", threads=threads) as teacher:
        sess = teacher.session
        name = sess.get_inputs()[0].name
        for f in tqdm(range(max(wanted) + 1), desc="Thunder", unit="frame"):
            ok, img = cap.read()
            if not ok:
                break
            for tid, i in wanted.get(f, []):
                where = PersonBoxes.of(img, [tracks[tid]["box"][i]])
                x, mats = crop_people(teacher.meta, img, where.boxes, where.paddings)
                coords, scores = sess.run(None, {name: x})
                tracks[tid]["gt_raw"][i] = crop_to_image(coords, mats)[0]
                tracks[tid]["gt_score"][i] = scores[0]
    cap.release()


def segments(frames: np.ndarray) -> list[slice]:
    """Runs of consecutive frame numbers."""
    cuts = np.flatnonzero(np.diff(frames) != 1) + 1
    bounds = [0, *cuts.tolist(), len(frames)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def zero_phase(x: np.ndarray, sigma: float) -> np.ndarray:
    """Centred Gaussian smoothing along axis 0 (edges: renormalised window)."""
    r = int(np.ceil(3 * sigma))
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    flat = x.reshape(len(x), -1)
    num = np.zeros_like(flat)
    den = np.zeros((len(x), 1))
    for k, wk in zip(range(-r, r + 1), w):
        lo, hi = max(0, -k), min(len(x), len(x) - k)
        num[lo:hi] += wk * flat[lo + k:hi + k]
        den[lo:hi] += wk
    return (num / den).reshape(x.shape)


def add_truth(tracks: dict[int, dict], sigma: float) -> None:
    for s in tracks.values():
        s["gt"] = np.full_like(s["raw"], np.nan)
        for seg in segments(s["frame"]):
            if seg.stop - seg.start >= 3:
                s["gt"][seg] = zero_phase(s["gt_raw"][seg], sigma)


def replay(s: dict, opts) -> np.ndarray:
    """The One Euro filter over a track's raw poses, restarted at every gap."""
    from edgepose.realtime.smoothing import OneEuroFilter

    f = OneEuroFilter(opts)
    out = np.empty_like(s["raw"])
    prev = None
    for i, (frame, t) in enumerate(zip(s["frame"], s["t"])):
        if prev is None or frame != prev + 1:
            f.reset()
        out[i] = f(s["raw"][i], float(t))
        prev = frame
    return out


def score(tracks: dict[int, dict], opts) -> dict[str, float]:
    errs, lags, jits = [], [], []
    for s in tracks.values():
        sm = replay(s, opts) if opts is not None else s["raw"]
        ok = (s["score"] >= MIN_SCORE) & (s["gt_score"] >= MIN_SCORE) & \
            np.isfinite(s["gt"][..., 0])
        res = sm - s["gt"]
        errs.append(np.linalg.norm(res, axis=-1)[ok])
        for seg in segments(s["frame"]):
            if seg.stop - seg.start < 3:
                continue
            g, r, m = s["gt"][seg], res[seg], ok[seg]
            dt = np.diff(s["t"][seg])[:, None, None]
            vel = np.diff(g, axis=0) / dt
            speed = np.linalg.norm(vel, axis=-1)
            both = m[1:] & m[:-1]
            mov = both & (speed >= MOVING)
            unit = vel / np.maximum(speed[..., None], 1e-9)
            lags.append((-(r[1:] * unit).sum(-1))[mov])
            jits.append(np.linalg.norm(np.diff(r, axis=0), axis=-1)[both])
    e, lag, j = (np.concatenate(v) for v in (errs, lags, jits))
    return {"error_px": float(np.median(e)), "lag_px": float(np.median(lag)),
            "jitter_px": float(np.median(j)), "joints": int(e.size)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=VTEST)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--gt-sigma", type=float, default=1.0, help="frames")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/smoothing")
    ap.add_argument("--cache", type=Path,
                    help="keep the raw tracks and Thunder's poses in this .pkl and reuse "
                         "them (re-scoring without re-running either model)")
    args = ap.parse_args(argv)
    if not args.video.is_file():
        sys.exit(f"{args.video}: not found (Debian: apt install opencv-doc)")
    from edgepose.realtime.smoothing import SmoothOptions

    import pickle

    if args.cache and args.cache.is_file():
        tracks = pickle.loads(args.cache.read_bytes())  # a file this script wrote
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tracks = series(raw_tracks(args.video, args.frames, Path(tmp), args.threads))
        thunder_truth(args.video, tracks, args.threads)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(tracks))
    add_truth(tracks, args.gt_sigma)

    now = SmoothOptions()
    rows = {"raw (no smoothing)": {"min_cutoff": None, "beta": None, "d_cutoff": None,
                                   **score(tracks, None)}}
    grid = []
    for dc, mc, beta in itertools.product(D_CUTOFFS, MIN_CUTOFFS, BETAS):
        opts = SmoothOptions(min_cutoff=mc, beta=beta, d_cutoff=dc)
        grid.append({"min_cutoff": mc, "beta": beta, "d_cutoff": dc, **score(tracks, opts)})
    # the objective: error (accuracy, lag included) + jitter (wobble), both median px
    best = min(grid, key=lambda r: r["error_px"] + r["jitter_px"])
    before = next(r for r in grid if (r["min_cutoff"], r["beta"], r["d_cutoff"]) == OLD_DEFAULTS)
    rows["defaults before (issue 32)"] = before
    rows["least error + jitter (grid)"] = best
    rows["defaults now"] = {"min_cutoff": now.min_cutoff, "beta": now.beta,
                            "d_cutoff": now.d_cutoff, **score(tracks, now)}
    heights = [np.median(s["box"][:, 3]) for s in tracks.values()]
    result = {"video": str(args.video), "frames": args.frames, "gt_sigma_frames": args.gt_sigma,
              "tracks": len(tracks), "median_box_height_px": float(np.median(heights)),
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "d_cutoff": now.d_cutoff, "rows": rows, "grid": grid}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    lines = [f"# One Euro settings on real motion ({args.video.name}, {args.frames} frames, "
             f"{len(tracks)} tracks, median person box {result['median_box_height_px']:.0f} px)",
             "", "Pseudo ground truth: MoveNet Thunder on full-resolution crops, zero-phase "
             f"Gaussian over time (sigma {args.gt_sigma:g} frame). Medians over "
             f"{before['joints']} joint positions; px in frame pixels.", "",
             "| setting | min_cutoff (Hz) | beta (1/px) | d_cutoff (Hz) | error px | lag px | "
             "jitter px/frame |", "|---|---|---|---|---|---|---|"]

    def g(v):
        return "-" if v is None else f"{v:g}"

    for name, r in rows.items():
        lines.append(f"| {name} | {g(r['min_cutoff'])} | {g(r['beta'])} | {g(r['d_cutoff'])} | "
                     f"{r['error_px']:.2f} | {r['lag_px']:.2f} | {r['jitter_px']:.2f} |")
    for dc in D_CUTOFFS:
        lines += ["", f"Grid at d_cutoff {dc:g} Hz (error / lag / jitter px):", "",
                  "| min_cutoff \\ beta | " + " | ".join(f"{b:g}" for b in BETAS) + " |",
                  "|---|" + "---|" * len(BETAS)]
        for mc in MIN_CUTOFFS:
            cells = [next(r for r in grid if (r["min_cutoff"], r["beta"], r["d_cutoff"])
                          == (mc, b, dc)) for b in BETAS]
            lines.append(f"| {mc:g} | " + " | ".join(
                f"{c['error_px']:.2f} / {c['lag_px']:.2f} / {c['jitter_px']:.2f}"
                for c in cells) + " |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Realtime app benchmark: backend-only throughput vs end-to-end pipeline FPS, latency, soak.

    python benchmarks/realtime.py [--model demo.onnx] [--threads 1] [--seconds 1.5] [--rounds 3]
                                  [--soak-frames 20000] [--out out/benchmarks]

Same model, same ONNX Runtime CPU backend object for every row:

* backend only: one preprocessed demo frame, ``backend(batch)`` in a loop (batch 1);
* pipeline (unpaced): ``--source demo --demo-fps 0`` through capture thread -> inference ->
  render thread, headless, latest-frame mode; once with the scene rendered live, once
  with pre-rendered frames looped (``demo_cache``) to isolate the pipeline's own overhead;
* pipeline (30 FPS paced): a webcam-like source; capture -> render latency p50/p99;
* soak: ``--soak-frames`` frames at a small size, RSS and thread count at start and end.

Without ``--model`` it uses ``edgepose/assets/demo.onnx`` when present, else exports an
UNTRAINED model (speed only) with ``engines.export``. Writes ``realtime.json`` and
``realtime.md`` to ``--out``. Timings on a shared CPU are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgepose.coords import whole_image_box  # noqa: E402
from edgepose.preprocess import preprocess  # noqa: E402
from edgepose.bundled import DEMO_MODEL  # noqa: E402
from edgepose.realtime.runner import RunOptions, build_pipeline  # noqa: E402
from edgepose.realtime.pipeline import PipelineOptions  # noqa: E402
from edgepose.realtime.sources import SourceOptions  # noqa: E402
from edgepose.engines.timing import Stopwatch, latency_stats, time_for  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def export_untrained(backbone: str, size: tuple[int, int], stride: int, out: Path) -> Path:
    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model
    from edgepose.engines.export import ExportOptions, export_model

    meta = ModelMeta(head="dsnt", backbone=backbone, input_size=size, stride=stride)
    export_model(build_model(meta), meta, out, ExportOptions(), progress=False)
    return out


def backend_only(backend, seconds: float, frame: np.ndarray) -> dict:
    """Calls per second of ``backend`` on one preprocessed frame (batch 1)."""
    h, w = frame.shape[:2]
    box, padding = whole_image_box(w, h)  # the live app's crop with nobody tracked
    x, _ = preprocess(frame, box, backend.meta, padding)
    batch = x[None]
    backend.warmup(5)
    times = time_for(lambda: backend(batch), seconds)
    return {"fps": len(times) / float(times.sum()), "ms_median": latency_stats(times)["median"],
            "calls": len(times)}


def pipeline_run(backend, model: str, frames: int, demo_fps: float, size: tuple[int, int],
                 cache: int = 0, on_frame=None) -> dict:
    opts = RunOptions(
        model=model, source="demo", headless=True, quiet=True,
        source_opts=SourceOptions(demo_fps=demo_fps, demo_size=size, demo_cache=cache),
        pipeline=PipelineOptions(frames=frames, on_frame=on_frame),
    )
    pipe = build_pipeline(opts, backend)
    res = pipe.run()
    assert not pipe.leftover_threads(), pipe.leftover_threads()
    return res.summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="ONNX model (default: bundled demo model or untrained)")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    ap.add_argument("--seconds", type=float, default=1.5,
                    help="length of each backend-only timing window (s)")
    ap.add_argument("--frames", type=int, default=200, help="frames per pipeline run")
    ap.add_argument("--rounds", type=int, default=3, help="repeats of every pipeline row")
    ap.add_argument("--demo-size", default="640x480")
    ap.add_argument("--soak-frames", type=int, default=20000)
    ap.add_argument("--soak-size", type=int, default=64, help="soak model input (square px)")
    ap.add_argument("--out", default="out/benchmarks", help="folder for realtime.json/.md")
    args = ap.parse_args(argv)

    from edgepose.engines.backend import load_backend
    from edgepose.realtime.sources import DemoSource

    w, h = (int(v) for v in args.demo_size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="edgepose-bench-"))
    trained = "given model"
    model = args.model
    if model is None:
        if DEMO_MODEL.is_file():
            model, trained = str(DEMO_MODEL), "bundled demo model"
        else:
            print("no bundled demo model: exporting an untrained mobilenetv3_large_100 dsnt "
                  "128x128 (speed only)", file=sys.stderr)
            model = str(export_untrained("mobilenetv3_large_100", (128, 128), 16,
                                         tmp / "bench.onnx"))
            trained = "untrained export, speed only"
    backend = load_backend(model, device="cpu", threads=args.threads)
    frame = DemoSource(SourceOptions(demo_size=(w, h))).read()
    rows = []

    # The machine is shared: measure backend-only right before and after every pipeline
    # run and compare each run with its own neighbours; report medians over the rounds.
    backend.warmup(5)
    variants = (("pipeline, demo rendered live, unpaced", 0.0, 0),
                ("pipeline, demo pre-rendered loop, unpaced", 0.0, 64),
                ("pipeline, demo paced at 30 FPS", 30.0, 0))
    runs: dict[str, list] = {name: [] for name, _, _ in variants}
    backend_fps, backend_ms = [], []
    window = args.seconds
    for _ in range(args.rounds):
        for name, fps, cache in variants:
            before = backend_only(backend, window, frame)
            s = pipeline_run(backend, model, args.frames, fps, (w, h), cache=cache)
            after = backend_only(backend, window, frame)
            ref = (before["fps"] + after["fps"]) / 2
            backend_fps.append(ref)
            backend_ms.append((before["ms_median"] + after["ms_median"]) / 2)
            runs[name].append((s, ref))
    med = statistics.median
    rows.append({"row": "backend only (batch 1)", "fps": med(backend_fps), "ratio": 1.0,
                 "ms": med(backend_ms)})
    for name, results in runs.items():
        summaries = [r[0] for r in results]
        rows.append({
            "row": name,
            "fps": med(x["fps_mean"] for x in summaries),
            "ratio": med(x["fps_mean"] / ref for x, ref in results),
            "latency_p50": med(x["latency_ms_p50"] for x in summaries),
            "latency_p99": med(x["latency_ms_p99"] for x in summaries),
            "dropped": int(med(x["dropped"] for x in summaries)),
            "stage_ms": {k: med(x["stage_ms_mean"][k] for x in summaries)
                         for k in summaries[0]["stage_ms_mean"]},
            # fraction of wall time the inference thread spent in the model: 1.0 means the
            # pipeline never made the model wait (it is the bottleneck stage)
            "inf_busy": med(x["fps_mean"] * x["stage_ms_mean"]["inf"] / 1e3 for x in summaries),
            "rounds": [{"fps": x["fps_mean"], "backend_fps": ref} for x, ref in results],
        })
    backend.close()

    # ---- soak: small model input, small frames, many frames
    soak_model = tmp / f"soak{args.soak_size}.onnx"
    export_untrained("mobilenetv3_large_100", (args.soak_size, args.soak_size), 16, soak_model)
    sb = load_backend(soak_model, device="cpu", threads=args.threads)
    marks = {}

    def mark(f, people):
        if f.id in (0, 1000) or f.id % 5000 == 0:
            marks.setdefault(f.id, rss_mb())

    threads0, rss0 = threading.active_count(), rss_mb()
    with Stopwatch() as sw:
        soak = pipeline_run(sb, str(soak_model), args.soak_frames, 0, (160, 120), on_frame=mark)
    soak_s = sw.seconds[-1]
    threads1, rss1 = threading.active_count(), rss_mb()
    sb.close()
    after_warm = marks.get(1000, rss0)
    soak_row = {"frames": soak["frames"], "seconds": soak_s, "fps": soak["fps_mean"],
                "rss_mb_start": rss0, "rss_mb_after_1000": after_warm, "rss_mb_end": rss1,
                "rss_growth_mb_after_warmup": rss1 - after_warm,
                "threads_start": threads0, "threads_end": threads1,
                "input": f"{args.soak_size}x{args.soak_size}", "frame": "160x120",
                "rss_marks": {str(k): round(v, 2) for k, v in sorted(marks.items())},
                "latency_p50": soak["latency_ms_p50"], "latency_p99": soak["latency_ms_p99"]}

    import onnxruntime

    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
                    "note": "shared 2-core CPU; timings drift up to 2x between runs"},
        "model": Path(model).name, "trained": trained, "threads": args.threads,
        "demo_size": [w, h], "rounds": args.rounds, "rows": rows, "soak": soak_row,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "edgepose.realtime.json").write_text(json.dumps(result, indent=2) + "\n")
    md = to_markdown(result)
    (out / "edgepose.realtime.md").write_text(md)
    print(md)
    return 0


def stages(row: dict) -> str:
    st = row.get("stage_ms")
    if not st:
        return f"inf {row['ms']:.1f} (median call)" if "ms" in row else "-"
    return "/".join(f"{st[k]:.1f}" for k in ("pre", "inf", "post", "render"))


def to_markdown(r: dict) -> str:
    f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = [
        f"Model `{r['model']}` ({r['trained']}), "
        f"ONNX Runtime CPU, {r['threads']} thread(s), demo frames "
        f"{r['demo_size'][0]}x{r['demo_size'][1]}; medians of {r['rounds']} rounds, each "
        f"pipeline run compared with backend-only runs right before and after it; "
        f"{r['machine']['note']}.",
        "",
        "| run | FPS | ratio to backend | model busy | latency p50 ms | latency p99 ms | "
        "dropped | stage ms pre/inf/post/render |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['row']} | {f(row['fps'])} | {f(row['ratio'], 3)} | "
                     f"{f(row.get('inf_busy'), 2)} | "
                     f"{f(row.get('latency_p50'))} | {f(row.get('latency_p99'))} | "
                     f"{row.get('dropped', '-')} | {stages(row)} |")
    s = r["soak"]
    lines += [
        "",
        f"Soak: {s['frames']} frames ({s['frame']} demo frames, {s['input']} model input) in "
        f"{s['seconds']:.0f} s ({f(s['fps'])} FPS). RSS {s['rss_mb_start']:.1f} MiB at start, "
        f"{s['rss_mb_after_1000']:.1f} after 1000 frames, {s['rss_mb_end']:.1f} at the end "
        f"(growth after warm-up {s['rss_growth_mb_after_warmup']:+.2f} MiB); threads "
        f"{s['threads_start']} -> {s['threads_end']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

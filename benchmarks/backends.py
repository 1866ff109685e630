"""Latency and throughput of every backend, per head and input size.

    python benchmarks/backends.py [--heads heatmap dsnt nerpe] [--sizes 64x64 128x128 256x192]
                                  [--backbone resnet18 --stride 8] [--threads 2]
                                  [--out benchmarks/results/backends]

For each head x size: a randomly initialised model (speed does not depend on the weights),
exported to ONNX (parity-checked), then for each runtime after warm-up:

* latency - batch 1, wall time of each call (every call returns host numpy arrays, i.e.
  synchronises): median / p90 / p99 in ms;
* throughput - batch ``--batch`` (default 8), one timer around ``--tp-iters`` calls:
  images per second. The CPU runtimes and the TensorRT backend synchronise inside each
  call, so for them the loop timer and per-call sync measure the same thing.

Runtimes: PyTorch eager (CPU, or CUDA when present), ONNX Runtime (CPU, CUDA EP when
present), TensorRT FP32 / FP16 (only with a GPU + edgepose[trt]; otherwise skipped with a
note). Writes ``<out>.md`` (one Markdown table + machine info) and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine_info(threads: int) -> dict:
    import onnxruntime
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu, "cpu_count": os.cpu_count(), "threads": threads,
        "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = None
    return info


def make_artifacts(head: str, hw: tuple[int, int], args, workdir: Path):
    """Checkpoint + ONNX (+ TensorRT engines when possible) for one head and size."""
    import torch

    from edgepose.checkpoint import save_checkpoint
    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model
    from edgepose.engines.export import ExportOptions, export_model

    torch.manual_seed(0)
    meta = ModelMeta(head=head, backbone=args.backbone, input_size=hw, stride=args.stride)
    model = build_model(meta).eval()
    stem = workdir / f"{head}_{hw[0]}x{hw[1]}"
    save_checkpoint(stem.with_suffix(".pt"), model, meta)
    export_model(model, meta, stem.with_suffix(".onnx"), ExportOptions(), progress=False)
    files = {"pytorch": stem.with_suffix(".pt"), "onnxruntime": stem.with_suffix(".onnx")}
    notes = []
    if args.no_trt:
        return files, notes
    try:
        from edgepose.engines.trt_build import BuildOptions, build_engine

        for prec in ("fp32", "fp16"):
            eng = stem.with_suffix(f".{prec}.engine")
            build_engine(files["onnxruntime"], eng, BuildOptions(
                precision=prec, max_batch=args.batch, opt_batch=1,
                timing_cache=str(workdir / "timing.cache")), progress=False)
            files[f"tensorrt-{prec}"] = eng
    except Exception as e:  # no GPU / TensorRT here: recorded, never faked
        notes.append(f"TensorRT skipped: {e}")
    return files, notes


def bench_one(label: str, path: Path, hw, args) -> dict:
    """Latency and throughput of one file, by the one timing harness (engines.timing)."""
    from edgepose.engines.backend import load_backend
    from edgepose.engines.timing import latency_stats, random_batch, time_each, time_loop

    with load_backend(path, device="auto", threads=args.threads) as b:
        one, many = random_batch(1, hw, seed=0), random_batch(args.batch, hw, seed=1)
        b.warmup(args.warmup)
        for _ in range(max(1, args.warmup // 2)):
            b(many)
        lat = latency_stats(time_each(lambda: b(one), args.iters))
        tp = args.tp_iters * args.batch / time_loop(lambda: b(many), args.tp_iters)
        return {"runtime": label, "backend": b.name, **{f"{k}_ms": lat[k] for k in
                                                         ("median", "p90", "p99")},
                "throughput_ips": tp}


def to_markdown(rows: list[dict], info: dict, notes: list[str], args) -> str:
    lines = [
        "| head | input (HxW) | runtime | median ms | p90 ms | p99 ms | "
        f"throughput img/s (batch {args.batch}) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['head']} | {r['input']} | {r['backend']} | {r['median_ms']:.2f} | "
                     f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['throughput_ips']:.0f} |")
    lines += ["", f"Machine: {info['cpu']} ({info['cpu_count']} cores visible, "
              f"{info['threads']} threads), GPU: {info['gpu'] or 'none'}, torch "
              f"{info['torch']}, onnxruntime {info['onnxruntime']}, TensorRT "
              f"{info['tensorrt'] or 'not installed'}; backbone {args.backbone} stride "
              f"{args.stride}; {info['time_utc']} UTC."]
    lines += [f"Note: {n}" for n in sorted(set(notes))]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", nargs="+", default=["heatmap", "dsnt", "nerpe"])
    p.add_argument("--sizes", nargs="+", default=["64x64", "128x128", "256x192"],
                   help="HxW input sizes")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--stride", type=int, default=8)
    p.add_argument("--threads", type=int, default=2, help="CPU threads per runtime")
    p.add_argument("--iters", type=int, default=50, help="latency calls (batch 1)")
    p.add_argument("--tp-iters", type=int, default=10, help="throughput calls")
    p.add_argument("--batch", type=int, default=8, help="throughput batch size")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--no-trt", action="store_true", help="skip the TensorRT rows")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backends"))
    args = p.parse_args(argv)

    import torch
    from tqdm import tqdm

    from edgepose.engines.backend import BACKENDS  # noqa: F401  (fails early if engines is missing)

    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    rows, notes = [], []
    if info["gpu"] is None:
        notes.append("no CUDA GPU on this machine: TensorRT FP32/FP16 rows skipped")
        args.no_trt = True
    notes.append("shared CPU: timings drift up to 2x between runs; compare within one run")
    jobs = [(h, s) for h in args.heads for s in args.sizes]
    with tempfile.TemporaryDirectory() as tmp:
        for head, size in tqdm(jobs, desc="benchmark"):
            hw = tuple(int(v) for v in size.lower().split("x"))
            try:
                files, n = make_artifacts(head, hw, args, Path(tmp))
            except Exception as e:
                notes.append(f"{head} {size}: could not build/export ({e})")
                continue
            notes += n
            for label, path in files.items():
                r = bench_one(label, path, hw, args)
                rows.append({"head": head, "input": f"{hw[0]}x{hw[1]}", **r})
    md = to_markdown(rows, info, notes, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"machine": info, "args": vars(args), "rows": rows, "notes": notes}, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

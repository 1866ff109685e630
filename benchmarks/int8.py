"""FP32 vs INT8 on ONNX Runtime CPU: latency (batch 1, same threads) and accuracy lost.

For each head (DSNT, NerPE) at 128x128: train a small model on a synthetic COCO-format set
(or take --ckpt-<head>), export it, calibrate it twice from the train split —

* ``int8-trt``: symmetric int8 activations (zero-point 0), the Q/DQ file TensorRT uses;
* ``int8-cpu``: asymmetric uint8 activations, the layout ONNX Runtime's x86 kernels want —

and compare all three on the held-out split (PCK@0.05, PCK@0.1, mean error in image px)
and in an interleaved batch-1 timing loop. Writes ``int8.json`` and ``int8.md`` to --out.

    python benchmarks/int8.py --epochs 8 --threads 2 --out runs/bench_int8

Timings on a shared machine drift; compare within one run (the loop is interleaved) and
read the p10 column next to the median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HEADS = ("dsnt", "nerpe")


def cpu_flags() -> dict[str, bool]:
    """INT8-relevant x86 features of this CPU (from /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")}


def fused_convs(path: Path) -> dict[str, int]:
    """Conv vs QLinearConv count after ONNX Runtime's graph rewrites (CPU provider)."""
    import tempfile

    import onnx
    import onnxruntime as ort

    # not engines.ort_session.make_session: this asks ONNX Runtime to write its optimised
    # graph (to count the fused ops), an option no inference session needs
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    with tempfile.TemporaryDirectory() as tmp:
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        ops = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    return {k: ops.count(k) for k in ("Conv", "QLinearConv", "ConvTranspose")}


def make_data(root: Path, n_train: int, n_val: int, seed: int) -> tuple[Path, Path]:
    from edgepose.data.synthetic import generate_coco_dataset

    train = root / "annotations" / "person_keypoints_train.json"
    val = root / "annotations" / "person_keypoints_val.json"
    if not train.is_file():
        train = generate_coco_dataset(root, n_train, seed=seed, image_size=(192, 192),
                                      split="train")
    if not val.is_file():
        val = generate_coco_dataset(root, n_val, seed=seed, image_size=(192, 192), split="val")
    return train, val


def train_head(head: str, args, train_json: Path, out: Path) -> Path:
    from edgepose.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from edgepose.train import train

    ckpt = out / "last.pt"
    if ckpt.is_file():
        return ckpt
    cfg = TrainConfig(
        model=ModelConfig(backbone=args.backbone, head=head, stride=8,
                          input_size=(args.size, args.size)),
        data=DataConfig(train_ann=str(train_json),
                        train_images=str(train_json.parent.parent / "images" / "train"),
                        augment=True),
        optim=OptimConfig(epochs=args.epochs, batch_size=16, lr=2e-3, warmup_epochs=0.5),
        out=str(out), device="cpu", progress=True, seed=args.seed,
    )
    t0 = time.perf_counter()
    train(cfg)
    print(f"[{head}] trained {args.epochs} epochs in {time.perf_counter() - t0:.0f} s")
    return ckpt


def bench_head(head: str, args, train_json: Path, val_json: Path) -> dict:
    import dataclasses

    from edgepose.calibration.qdq import QuantConfig, cpu_config, quantize_qdq
    from edgepose.calibration.int8_report import ReportConfig, evaluate_artifact, measure_latency
    from edgepose.calibration.stream import CalibrationStream, StreamConfig
    from edgepose.engines.meta_io import read_meta
    from edgepose.engines.export import ExportOptions, export_checkpoint

    work = args.out / head
    ckpt = Path(getattr(args, f"ckpt_{head}") or train_head(head, args, train_json, work / "run"))
    paths = {"fp32": work / "model.onnx", "int8-trt": work / "model.int8.onnx",
             "int8-cpu": work / "model.int8cpu.onnx"}
    export_checkpoint(ckpt, paths["fp32"], ExportOptions(), progress=False)
    meta = read_meta(paths["fp32"])
    stream = CalibrationStream(train_json, meta, StreamConfig(count=args.count, seed=args.seed))
    for name, qcfg in (("int8-trt", QuantConfig(method=args.method)),
                       ("int8-cpu", cpu_config(args.method))):
        t0 = time.perf_counter()
        quantize_qdq(paths["fp32"], paths[name], stream, meta, dataclasses.replace(qcfg))
        print(f"[{head}] {name} calibrated in {time.perf_counter() - t0:.1f} s")
    rcfg = ReportConfig(device="cpu", threads=args.threads, runs=args.runs, warmup=10)
    lat = measure_latency(list(paths.values()), rcfg)
    rows = {}
    for (name, path), t in zip(paths.items(), lat):
        rows[name] = {"latency_ms": t["median"], "latency_p10_ms": t["p10"],
                      **evaluate_artifact(path, val_json, None, rcfg), **fused_convs(path)}
    for name in ("int8-trt", "int8-cpu"):
        r = rows[name]
        r["speedup"] = rows["fp32"]["latency_ms"] / r["latency_ms"]
        r["speedup_p10"] = rows["fp32"]["latency_p10_ms"] / r["latency_p10_ms"]
        r["pck@0.05_lost_points"] = 100 * (rows["fp32"]["pck@0.05"] - r["pck@0.05"])
    return {"meta": meta.name, "checkpoint": str(ckpt), "rows": rows}


def markdown(results: dict) -> str:
    lines = [f"threads={results['threads']}, batch 1, {results['runs']} interleaved runs, "
             f"{results['cpu']}, onnxruntime {results['onnxruntime']}", "",
             "| model | variant | median ms | p10 ms | speed-up (median / p10) | PCK@0.05 | "
             "PCK@0.1 | mean err px | PCK@0.05 lost | QLinearConv / Conv |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for head, r in results["heads"].items():
        for name, row in r["rows"].items():
            sp = (f"x{row['speedup']:.2f} / x{row['speedup_p10']:.2f}" if "speedup" in row
                  else "-")
            lost = f"{row['pck@0.05_lost_points']:+.2f}" if "speedup" in row else "-"
            lines.append(
                f"| {r['meta']} | {name} | {row['latency_ms']:.2f} | {row['latency_p10_ms']:.2f} "
                f"| {sp} | {row['pck@0.05']:.4f} | {row['pck@0.1']:.4f} | "
                f"{row['mean_px_error']:.2f} | {lost} | {row['QLinearConv']} / {row['Conv']} |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench_int8"))
    p.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--train-images", type=int, default=200)
    p.add_argument("--val-images", type=int, default=40)
    p.add_argument("--count", type=int, default=128, help="calibration samples")
    p.add_argument("--method", default="minmax", choices=("minmax", "entropy", "percentile"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    for h in HEADS:
        p.add_argument(f"--ckpt-{h}", default=None, help=f"use this {h} checkpoint, no training")
    return p.parse_args(argv)


def main(argv=None) -> int:
    import onnxruntime as ort
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train_json, val_json = make_data(args.out / "data", args.train_images, args.val_images,
                                     args.seed)
    results = {"threads": args.threads, "runs": args.runs, "onnxruntime": ort.__version__,
               "cpu": platform.processor() or platform.machine(), "cpu_flags": cpu_flags(),
               "cores": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()},
               "heads": {}}
    for head in args.heads:
        results["heads"][head] = bench_head(head, args, train_json, val_json)
        (args.out / "int8.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (args.out / "int8.md").write_text(text + "\n")
    print(text)
    print(f"cpu flags: {results['cpu_flags']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""FP32 vs INT8: accuracy on a held-out set and latency on one backend, as a table and JSON.

Accuracy comes from ``edgepose.evaluate`` (PCK@0.05 / PCK@0.1 with the bbox max(w, h)
normaliser, mean error in original-image pixels) over the ``CocoKeypoints`` validation
dataset, so the numbers match ``edgepose eval``. Latency is the median wall time of one
batch-1 call after warm-up (and its 10th percentile), with the same thread count for both
models, interleaved (FP32, INT8, FP32, ...) so machine-load drift hits both equally.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS = ("pck@0.05", "pck@0.1", "mean_px_error")


@dataclass
class ReportConfig:
    """``device``/``threads``: the backend both models run on; ``runs``: timed calls each."""

    device: str = "cpu"
    threads: int | None = None
    runs: int = 50
    warmup: int = 5
    eval_batch: int = 16
    progress: bool = True


def evaluate_artifact(path: str | os.PathLike, ann: str | os.PathLike,
                      images: str | os.PathLike | None, cfg: ReportConfig) -> dict[str, float]:
    """PCK@0.05/0.1 and mean pixel error of an ONNX/checkpoint/engine on a COCO file."""
    from edgepose.calibration.stream import guess_image_root
    from edgepose.data.coco import CocoKeypoints
    from edgepose.evaluate import evaluate_model
    from edgepose.engines.backend import load_backend

    if not images:
        images = guess_image_root(Path(ann), _first_file_name(Path(ann)))
    with load_backend(path, device=cfg.device, threads=cfg.threads) as backend:
        dataset = CocoKeypoints(str(ann), str(images), backend.meta, train=False, aug=False)
        metrics = evaluate_model(backend, dataset, batch_size=cfg.eval_batch,
                                 progress=cfg.progress)
    return {k: float(metrics[k]) for k in (*METRICS, "num_samples") if k in metrics}


def _first_file_name(ann: Path) -> str | None:
    """file_name of a COCO file's first image (to find its image folder)."""
    from edgepose.errors import DataError

    try:
        images = json.loads(ann.read_text()).get("images") or [{}]
        return images[0].get("file_name")
    except (OSError, ValueError, AttributeError) as e:
        raise DataError(f"{ann}: not a readable COCO annotation file ({e})") from None


def measure_latency(paths: list[str | os.PathLike], cfg: ReportConfig) -> list[dict[str, float]]:
    """Batch-1 latency (ms) of each model: median and 10th percentile (the p10 is the
    steadier number on a shared machine), timed interleaved on one backend kind by the one
    harness (:func:`edgepose.engines.timing.compare_latency`)."""
    from edgepose.engines.backend import load_backend
    from edgepose.engines.timing import compare_latency

    backends = [load_backend(p, device=cfg.device, threads=cfg.threads) for p in paths]
    try:
        return compare_latency(backends, backends[0].meta.input_size, cfg.runs, cfg.warmup)
    finally:
        for b in backends:
            b.close()


def compare(fp32: str | os.PathLike, int8: str | os.PathLike, cfg: ReportConfig,
            ann: str | os.PathLike | None = None,
            images: str | os.PathLike | None = None) -> dict[str, Any]:
    """FP32 vs INT8 report dict: per-model metrics + latency, and the deltas."""
    from edgepose.engines.backend import load_backend

    with load_backend(fp32, device=cfg.device, threads=cfg.threads) as b:
        backend_name = b.name
    lat = measure_latency([fp32, int8], cfg)
    rows = {name: {"model": str(path), "latency_ms": t["median"], "latency_p10_ms": t["p10"]}
            for name, path, t in zip(("fp32", "int8"), (fp32, int8), lat)}
    if ann is not None:
        rows["fp32"].update(evaluate_artifact(fp32, ann, images, cfg))
        rows["int8"].update(evaluate_artifact(int8, ann, images, cfg))
    report: dict[str, Any] = {
        "backend": backend_name, "threads": cfg.threads, "batch": 1, "runs": cfg.runs,
        "eval_data": str(ann) if ann else None, **rows,
        "speedup": lat[0]["median"] / lat[1]["median"],
        "speedup_p10": lat[0]["p10"] / lat[1]["p10"],
    }
    if ann is not None:
        report["pck@0.05_lost_points"] = 100 * (rows["fp32"]["pck@0.05"] - rows["int8"]["pck@0.05"])
        report["mean_px_error_added"] = (rows["int8"]["mean_px_error"]
                                         - rows["fp32"]["mean_px_error"])
    return report


def format_report(report: dict[str, Any]) -> str:
    """Markdown table of a :func:`compare` report."""
    cols = [("latency_ms", "median ms (b=1)", "{:.2f}"), ("latency_p10_ms", "p10 ms", "{:.2f}")]
    cols += [(k, k, "{:.2f}" if k == "mean_px_error" else "{:.4f}")
             for k in METRICS if k in report["fp32"]]
    head = "| model | " + " | ".join(c[1] for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for name in ("fp32", "int8"):
        r = report[name]
        lines.append(f"| {name} | " + " | ".join(f.format(r[k]) for k, _, f in cols) + " |")
    tail = (f"speed-up x{report['speedup']:.2f} median, x{report['speedup_p10']:.2f} p10 "
            f"({report['backend']}, threads={report['threads'] or 'default'})")
    if "pck@0.05_lost_points" in report:
        tail += (f"; PCK@0.05 lost {report['pck@0.05_lost_points']:.2f} points; mean error "
                 f"{report['mean_px_error_added']:+.2f} px")
    return "\n".join(lines + ["", tail])


def save_json(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``report`` (plus its config) as indented JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, default=str))


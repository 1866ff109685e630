"""Run a sweep: for each point build (or load) the network, make the artifact its backend
opens, measure speed and memory, and accuracy when the point has trained weights and a
dataset. One result row per point; a failing point records its error and the sweep goes on.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgepose.metadata import ModelMeta
from edgepose.models.complexity import count_parameters
from edgepose.app.profiling import checkpoints as ckpts
from edgepose.app.profiling.artifacts import (Artifacts, ModelSpec, count_gflops,
                                          nerpe_decoder_gflops, safe_stem)
from edgepose.app.profiling.measure import PeakMemory, release_memory
from edgepose.engines.timing import TimingConfig, measure_speed
from edgepose.app.profiling.sweep import SweepPoint, size_label

# Result columns, in CSV order. Units: params in millions, GFLOPs per image (2 x MACs),
# latencies in ms at batch 1, throughput in images/s, memory in MiB, errors in pixels of
# the original image, PCK / AP as fractions in [0, 1].
COLUMNS = (
    "point", "backbone", "head", "decoder", "input", "backend", "precision", "device",
    "runtime", "threads", "status", "trained", "params_m", "gflops", "decoder_gflops",
    "latency_ms", "p90_ms", "p99_ms", "fps_b1", "fps_batch", "batch", "peak_mem_mb",
    "pck@0.05", "pck@0.1", "mean_err_px", "coco_ap", "eval_samples", "checkpoint", "note",
)
# Filled for every point with status "ok".
REQUIRED_OK = (
    "params_m", "gflops", "latency_ms", "p90_ms", "p99_ms", "fps_b1", "fps_batch",
    "batch", "peak_mem_mb",
)
ACCURACY = ("pck@0.05", "pck@0.1", "mean_err_px")


@dataclass
class EvalData:
    """A COCO-format keypoint set to measure accuracy on (``limit``: first N people only)."""

    ann_file: Path
    image_root: Path
    limit: int | None = None


@dataclass
class SweepOptions:
    """Everything a sweep run needs besides its points."""

    timing: TimingConfig = field(default_factory=TimingConfig)
    device: str = "cpu"
    threads: int = 2
    stride: int = 8
    checkpoints: list[ckpts.CheckpointEntry] = field(default_factory=list)
    data: EvalData | None = None
    calib_count: int = 64
    parity: bool = False
    fail_fast: bool = False
    ort_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    work_dir: Path | None = None  # artifacts/ + calibration/ go here (temporary when None)
    keep_artifacts: bool = False
    progress: bool = True


def empty_row(point: SweepPoint, opts: SweepOptions) -> dict[str, Any]:
    row = {c: "" for c in COLUMNS}
    row.update(
        point=point.index, backbone=point.backbone, head=point.head.label,
        decoder=point.head.decoder_label, input=size_label(point.size), backend=point.backend,
        precision=point.precision, device=opts.device, threads=opts.threads,
        batch=opts.timing.batch, trained="no",
    )
    return row


def model_spec(point: SweepPoint,
               opts: SweepOptions) -> tuple[ModelSpec, ckpts.CheckpointEntry | None]:
    """The network for ``point``: a matching trained checkpoint (decoder overridden by the
    point's head choice for NerPE) or random weights at ``opts.stride``."""
    entry = ckpts.match(opts.checkpoints, point)
    if entry is not None:
        meta = entry.meta
        if point.head.decoder:
            meta = dataclasses.replace(meta, decoder=point.head.decoder_dict)
        return ModelSpec(meta, entry.path), entry
    meta = ModelMeta(head=point.head.head, backbone=point.backbone, input_size=point.size,
                     stride=opts.stride, decoder=point.head.decoder_dict)
    return ModelSpec(meta), None


def runtime_device(point: SweepPoint, opts: SweepOptions) -> str:
    """Where ``point`` really runs: "cuda" or "cpu". ONNX Runtime without its CUDA provider
    runs on the CPU even in a CUDA sweep (the runtime column says so)."""
    if point.backend == "tensorrt":
        return "cuda"
    if opts.device != "cuda":
        return "cpu"
    if point.backend == "onnxruntime" and "CUDAExecutionProvider" not in opts.ort_providers:
        return "cpu"
    return "cuda"


def open_backend(path: Path, point: SweepPoint, opts: SweepOptions):
    """Load ``path`` with engines.load_backend (torch fp16 on CUDA: a half-precision copy)."""
    from edgepose.engines.backend import load_backend

    backend = load_backend(path, device=runtime_device(point, opts), threads=opts.threads)
    if point.backend == "torch" and point.precision == "fp16":
        backend = HalfTorch(backend)
    return backend


class HalfTorch:
    """A CUDA TorchBackend run in float16 (inputs cast on the device, outputs back to fp32)."""

    def __init__(self, backend):
        import torch

        self.inner = backend
        self.meta = backend.meta
        self.name = backend.name + "-fp16"
        self.precision = "fp16"
        backend.model.half()
        self._torch = torch

    def __call__(self, batch):
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.inner.device).half()
            coords, scores = self.inner.model(x)
        return {"coords": coords.float().cpu().numpy(), "scores": scores.float().cpu().numpy()}

    def close(self) -> None:
        self.inner.close()


class Sweep:
    """Runs points in order, keeping one network's artifacts while its points run."""

    def __init__(self, opts: SweepOptions):
        self.opts = opts
        self._tmp = None
        if opts.work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="edgepose-profile-")
            self.work_dir = Path(self._tmp.name)
        else:
            self.work_dir = Path(opts.work_dir)
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self._art: Artifacts | None = None
        self._art_key = None
        self._complexity: dict[tuple, dict[str, Any]] = {}
        self._datasets: dict[tuple, Any] = {}

    # ------------------------------------------------------------------ artifacts

    def artifacts(self, point: SweepPoint) -> tuple[Artifacts, ckpts.CheckpointEntry | None]:
        spec, entry = model_spec(point, self.opts)
        key = (point.model_key, str(spec.checkpoint))
        if self._art_key != key:
            self.release()
            folder = self.work_dir / "artifacts"
            folder.mkdir(parents=True, exist_ok=True)
            calib = self.opts.data.ann_file if self.opts.data else None
            images = self.opts.data.image_root if self.opts.data else None
            self._art = Artifacts(spec, folder, safe_stem(f"{point.backbone}-{point.head.label}-"
                                                           f"{size_label(point.size)}"),
                                  calib_source=calib, calib_images=images,
                                  calib_count=self.opts.calib_count, parity=self.opts.parity,
                                  max_batch=self.opts.timing.batch)
            self._art_key = key
        return self._art, entry

    def release(self) -> None:
        if self._art is not None:
            self._art.close(keep=self.opts.keep_artifacts)
        self._art, self._art_key = None, None
        release_memory()

    def complexity(self, point: SweepPoint, art: Artifacts) -> dict[str, Any]:
        key = point.model_key
        if key not in self._complexity:
            model = art.model
            dec = nerpe_decoder_gflops(model)
            self._complexity[key] = {
                "params_m": count_parameters(model) / 1e6,
                "gflops": count_gflops(model, point.size),
                "decoder_gflops": "" if dec is None else dec,
            }
        return self._complexity[key]

    def dataset(self, meta: ModelMeta):
        from edgepose.data.coco import CocoKeypoints

        d = self.opts.data
        key = (tuple(meta.input_size), meta.mean, meta.std, meta.color, meta.skeleton)
        if key not in self._datasets:
            ds = CocoKeypoints(d.ann_file, d.image_root, meta, train=False)
            if d.limit is not None and d.limit < len(ds):
                from torch.utils.data import Subset

                ds = Subset(ds, range(d.limit))
            self._datasets[key] = ds
        return self._datasets[key]

    # ------------------------------------------------------------------ one point

    def run_point(self, point: SweepPoint) -> dict[str, Any]:
        """Measure one point; returns its result row (status ok / skipped / error)."""
        row = empty_row(point, self.opts)
        if point.skip:
            row.update(status="skipped", note=point.skip)
            return row
        try:
            self._measure(point, row)
            row["status"] = "ok"
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if self.opts.fail_fast:
                raise
            row.update(status="error", note=f"{type(e).__name__}: {one_line(str(e))}")
            row["_traceback"] = traceback.format_exc()
        return row

    def _measure(self, point: SweepPoint, row: dict[str, Any]) -> None:
        art, entry = self.artifacts(point)
        row.update(self.complexity(point, art))
        notes = []
        if entry is not None:
            row.update(trained="yes", checkpoint=str(entry.path))
        else:
            notes.append("speed only: random weights (no trained checkpoint)")
        path = art.path_for(point.backend, point.precision)
        row["device"] = runtime_device(point, self.opts)
        with PeakMemory(row["device"]) as mem:
            backend = open_backend(path, point, self.opts)
            row["runtime"] = backend.name
            try:
                speed = measure_speed(backend, point.size, self.opts.timing)
            except BaseException:
                backend.close()
                raise
        row.update(
            latency_ms=speed.latency_median_ms, p90_ms=speed.latency_p90_ms,
            p99_ms=speed.latency_p99_ms, fps_b1=speed.fps_b1, fps_batch=speed.fps_batch,
            batch=speed.batch, peak_mem_mb=mem.peak_mb if mem.peak_mb is not None else "",
        )
        try:
            if entry is not None and self.opts.data is not None:
                row.update(self.accuracy(backend, art.meta))
            elif entry is not None:
                notes.append("trained, but no --data given: speed only")
        finally:
            backend.close()
        if mem.peak_mb is None:
            notes.append("peak memory unavailable on this OS")
        row["note"] = "; ".join(notes)

    def accuracy(self, backend, meta: ModelMeta) -> dict[str, Any]:
        """PCK@0.05/0.1, mean error (original-image px) and COCO AP of ``backend``."""
        from edgepose.evaluate import evaluate_model

        ds = self.dataset(meta)
        m = evaluate_model(backend, ds, batch_size=max(1, self.opts.timing.batch),
                           coco_ann=self.opts.data.ann_file, progress=False)
        return {
            "pck@0.05": m["pck@0.05"], "pck@0.1": m["pck@0.1"],
            "mean_err_px": m["mean_px_error"], "coco_ap": m.get("AP", ""),
            "eval_samples": m.get("num_samples", len(ds)),
        }

    # ------------------------------------------------------------------ the sweep

    def run(self, points: list[SweepPoint],
            on_row: Callable[[dict], None] | None = None) -> list[dict]:
        """Run every point (tqdm bar); ``on_row`` sees each finished row (e.g. to save it).

        Ctrl-C stops the sweep: the rows finished so far are returned and
        ``self.interrupted`` is set."""
        from tqdm import tqdm

        rows: list[dict] = []
        self.interrupted = False
        bar = tqdm(points, desc="profile", unit="point", disable=not self.opts.progress)
        try:
            for point in bar:
                bar.set_postfix_str(point.label)
                row = self.run_point(point)
                rows.append(row)
                if on_row is not None:
                    on_row(row)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            bar.close()
            self.close()
        return rows

    def close(self) -> None:
        self.release()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def missing_required(row: dict[str, Any]) -> list[str]:
    """Required columns of an ok row that are empty or not finite (tests and a sanity check)."""
    bad = []
    for c in REQUIRED_OK:
        v = row.get(c, "")
        if v == "" or v is None or (isinstance(v, float) and not math.isfinite(v)):
            bad.append(c)
    return bad

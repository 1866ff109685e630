"""Timing and memory harness.

Latency: one call per sample at batch 1, each call timed on its own (``Backend.__call__``
returns numpy arrays, so every call is synchronised with the device). Throughput: images /
total time of back-to-back calls (batch 1: the same timed calls; batch B: one timer around
a loop). Peak memory: CPU resident set (``VmHWM`` from
``/proc/self/status`` after resetting it through ``/proc/self/clear_refs``; a sampling
thread where that reset is not allowed) or CUDA allocator peak when the run is on a GPU.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class TimingConfig:
    """``warmup`` untimed calls, ``repeats`` timed batch-1 calls, throughput at ``batch``
    over ``max(3, repeats // 4)`` calls (at least ``repeats`` images)."""

    warmup: int = 10
    repeats: int = 50
    batch: int = 8

    @property
    def batch_calls(self) -> int:
        return max(3, -(-self.repeats // self.batch), self.repeats // 4)


@dataclass
class SpeedResult:
    """Latencies in milliseconds (batch 1), throughputs in images per second."""

    latency_median_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    fps_b1: float
    fps_batch: float
    batch: int


def latency_stats(seconds) -> dict[str, float]:
    """Per-call times (s) -> {"median", "p90", "p99"} in milliseconds (linear interpolation)."""
    t = np.asarray(seconds, dtype=np.float64) * 1000.0
    if t.size == 0:
        raise ValueError("no timings")
    return {
        "median": float(np.median(t)),
        "p90": float(np.percentile(t, 90)),
        "p99": float(np.percentile(t, 99)),
    }


def time_each(fn: Callable[[], object], n: int) -> np.ndarray:
    """Call ``fn`` ``n`` times, timing each call on its own -> (n,) seconds."""
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def time_loop(fn: Callable[[], object], n: int) -> float:
    """Total seconds for ``n`` back-to-back calls (one timer around the loop)."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def random_batch(batch: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(batch, 3, H, W) float32 input, roughly normalised-image statistics."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 3, size[0], size[1]), dtype=np.float32)


def measure_speed(run: Callable[[np.ndarray], object], size: tuple[int, int],
                  cfg: TimingConfig) -> SpeedResult:
    """Latency (batch 1) and throughput (batch 1 and ``cfg.batch``) of ``run(batch)``."""
    x1 = random_batch(1, size, seed=1)
    for _ in range(max(cfg.warmup, 1)):
        run(x1)
    times = time_each(lambda: run(x1), max(cfg.repeats, 1))
    lat = latency_stats(times)
    fps_b1 = times.size / float(times.sum())  # back-to-back calls: images / total time
    if cfg.batch > 1:
        xb = random_batch(cfg.batch, size, seed=2)
        for _ in range(max(1, cfg.warmup // 2)):
            run(xb)
        n = cfg.batch_calls
        fps_batch = n * cfg.batch / time_loop(lambda: run(xb), n)
    else:
        fps_batch = fps_b1
    return SpeedResult(lat["median"], lat["p90"], lat["p99"], fps_b1, fps_batch, cfg.batch)


# ----------------------------------------------------------------------------- memory


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Current resident set size in MiB (None where /proc is unavailable)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so the next point's
    RSS delta is not hidden by memory the previous point freed but still held."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except Exception:
        pass


class PeakMemory:
    """Context manager: ``peak_mb`` = peak memory during the block minus memory before it.

    CPU: peak resident set (VmHWM) after a reset via ``/proc/self/clear_refs`` (Linux >= 4.0),
    else a thread sampling VmRSS every ``interval`` s. CUDA (``device="cuda"``): PyTorch's
    allocator peak plus the drop in free device memory (covers ONNX Runtime / TensorRT).
    """

    def __init__(self, device: str = "cpu", interval: float = 0.005):
        self.device = device
        self.interval = interval
        self.peak_mb: float | None = None
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled_kb = 0

    def __enter__(self) -> "PeakMemory":
        release_memory()
        self._base_kb = _status_kb("VmRSS")
        self._hwm_reset = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._hwm_reset = True
        except OSError:
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._cuda_base = torch.cuda.memory_allocated()
            self._cuda_free0 = torch.cuda.mem_get_info()[0]
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            kb = _status_kb("VmRSS") or 0
            self._sampled_kb = max(self._sampled_kb, kb)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch_peak = torch.cuda.max_memory_allocated() - self._cuda_base
            other = self._cuda_free0 - torch.cuda.mem_get_info()[0]
            self.peak_mb = max(torch_peak, other, 0) / 2**20
            return
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            peak_kb = self._sampled_kb
        else:
            peak_kb = _status_kb("VmHWM") if self._hwm_reset else None
        if peak_kb is None or self._base_kb is None:
            self.peak_mb = None
        else:
            self.peak_mb = max(peak_kb - self._base_kb, 0) / 1024.0

"""The one timing harness: latency and throughput of anything that runs a batch.

Every number edgepose reports about speed comes from here: ``edgepose profile``
(:mod:`edgepose.app.profiling.run_points`), the INT8 and adapt before/after reports
(:func:`edgepose.calibration.int8_report.measure_latency`) and the scripts in
``benchmarks/``.

* latency: one call per sample at batch 1, each call timed on its own. ``Backend.__call__``
  returns numpy arrays, so every call is synchronised with the device; statistics are in
  milliseconds (:func:`latency_stats`).
* throughput: images / total time of back-to-back calls (one timer around a loop,
  :func:`time_loop`).
* for a time budget instead of a call count: :func:`time_for`; code that cannot be wrapped in
  a function (one step inside an evaluation loop): :class:`Stopwatch`.
* several models compared: timed interleaved (A, B, A, B, ...) by :func:`time_interleaved`,
  so drift in machine load hits all of them equally.

Warm-up calls come first and are never timed. Pure Python + numpy: no torch import.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

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
    """Per-call times (s) -> {"median", "p10", "p90", "p99"} in milliseconds (linear
    interpolation). The p10 is the steadier number on a shared machine."""
    t = np.asarray(seconds, dtype=np.float64) * 1000.0
    if t.size == 0:
        raise ValueError("no timings")
    return {
        "median": float(np.median(t)),
        "p10": float(np.percentile(t, 10)),
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


def time_for(fn: Callable[[], object], seconds: float, min_calls: int = 3) -> np.ndarray:
    """Call ``fn`` until ``seconds`` have passed (at least ``min_calls`` times), timing each
    call on its own -> (n,) seconds."""
    out: list[float] = []
    t_end = time.perf_counter() + seconds
    while len(out) < min_calls or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return np.asarray(out, dtype=np.float64)


class Stopwatch:
    """Times the body of each ``with`` block: ``with sw: ...`` appends its seconds to
    ``sw.seconds`` (the step of a loop that does other, untimed work between steps)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._t0 = 0.0

    def __enter__(self) -> "Stopwatch":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds.append(time.perf_counter() - self._t0)

    @property
    def last_ms(self) -> float:
        return self.seconds[-1] * 1000.0


def time_loop(fn: Callable[[], object], n: int) -> float:
    """Total seconds for ``n`` back-to-back calls (one timer around the loop)."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def time_interleaved(fns: Sequence[Callable[[], object]], n: int) -> list[np.ndarray]:
    """``n`` rounds of one timed call of each ``fns[i]`` in turn -> per function (n,)
    seconds. Interleaving spreads machine-load drift evenly over the functions compared."""
    out = [np.empty(n, dtype=np.float64) for _ in fns]
    for r in range(n):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            out[i][r] = time.perf_counter() - t0
    return out


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


def compare_latency(runs: Sequence[Callable[[np.ndarray], object]], size: tuple[int, int],
                    repeats: int = 50, warmup: int = 5) -> list[dict[str, float]]:
    """Batch-1 :func:`latency_stats` of each ``runs[i](batch)`` on one (1, 3, H, W) input,
    after ``warmup`` untimed calls each, timed interleaved."""
    x = random_batch(1, size)
    for run in runs:
        for _ in range(warmup):
            run(x)
    times = time_interleaved([lambda r=run: r(x) for run in runs], max(repeats, 1))
    return [latency_stats(t) for t in times]

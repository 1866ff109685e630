"""The one timing harness (edgepose.engines.timing): statistics, call counts, interleaving."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.engines.timing import (TimingConfig, compare_latency, latency_stats,
                                     measure_speed, time_interleaved)


def test_latency_stats_golden():
    s = latency_stats(np.arange(1, 101) / 1000.0)  # 1..100 ms
    assert s["median"] == pytest.approx(50.5)
    assert s["p90"] == pytest.approx(90.1)
    assert s["p99"] == pytest.approx(99.01)


def test_measure_speed_counts_calls():
    calls = []

    def run(x):
        calls.append(x.shape)
        return x.sum()

    cfg = TimingConfig(warmup=2, repeats=5, batch=3)
    res = measure_speed(run, (16, 24), cfg)
    b1 = [c for c in calls if c[0] == 1]
    b3 = [c for c in calls if c[0] == 3]
    assert len(b1) == 2 + 5, "warm-up + timed batch-1 calls"
    assert len(b3) == max(1, cfg.warmup // 2) + cfg.batch_calls
    assert all(c[1:] == (3, 16, 24) for c in calls), "inputs are (B, 3, H, W)"
    assert res.latency_median_ms > 0 and res.fps_b1 > 0 and res.fps_batch > 0
    assert res.latency_median_ms <= res.latency_p90_ms <= res.latency_p99_ms


def test_latency_stats_p10():
    s = latency_stats(np.arange(1, 101) / 1000.0)
    assert s["p10"] == pytest.approx(10.9)


def test_interleaved_timing_alternates_the_functions():
    calls = []
    times = time_interleaved([lambda: calls.append("a"), lambda: calls.append("b")], 3)
    assert calls == ["a", "b"] * 3, "A, B, A, B, ...: drift hits both equally"
    assert [t.shape for t in times] == [(3,), (3,)] and all((t >= 0).all() for t in times)


def test_compare_latency_warms_up_then_times_batch_one():
    shapes = {"a": [], "b": []}
    runs = [lambda x: shapes["a"].append(x.shape), lambda x: shapes["b"].append(x.shape)]
    stats = compare_latency(runs, (16, 24), repeats=4, warmup=2)
    assert all(v == [(1, 3, 16, 24)] * (2 + 4) for v in shapes.values()), shapes
    assert len(stats) == 2 and all(s["p10"] <= s["median"] <= s["p90"] for s in stats)


def test_time_for_keeps_calling_until_the_budget_is_spent():
    import time

    from edgepose.engines.timing import time_for

    calls = []
    t = time_for(lambda: (calls.append(1), time.sleep(0.01)), seconds=0.05)
    assert len(t) == len(calls) >= 3
    assert t.sum() >= 0.04 and (t >= 0.009).all()  # each call timed, the sleep inside it
    assert len(time_for(lambda: None, seconds=0.0, min_calls=4)) == 4


def test_stopwatch_times_each_block_and_only_the_block():
    import time

    from edgepose.engines.timing import Stopwatch

    sw = Stopwatch()
    for d in (0.02, 0.0):
        with sw:
            time.sleep(d)
        time.sleep(0.02)  # outside the block: not timed
    assert len(sw.seconds) == 2
    assert 0.019 <= sw.seconds[0] < 0.2 and sw.seconds[1] < 0.015
    assert sw.last_ms == pytest.approx(sw.seconds[1] * 1000.0)

"""FPS log: records, golden summary numbers, rolling values, summary file."""

from __future__ import annotations

import json

import pytest

from edgepose.realtime.fpslog import FpsLog, format_summary, summary_path


def _times(i: int, t0: float = 100.0) -> dict:
    """Frame i captured at t0 + i/20 s; stages 1, 2, 3, 4 ms; latency 10 + i ms."""
    c = t0 + i / 20.0
    return {"capture": c, "pre_start": c + 0.001, "pre_end": c + 0.002,
            "inf_start": c + 0.002, "inf_end": c + 0.004, "post_start": c + 0.004,
            "post_end": c + 0.007, "smooth_start": c + 0.007, "smooth_end": c + 0.0075,
            "render_start": c + 0.006 + i / 1000.0,
            "render_end": c + 0.010 + i / 1000.0}


def test_summary_golden_values(tmp_path):
    log = FpsLog(tmp_path / "run.jsonl", t0=100.0, info={"backend": "b", "model": "m"},
                 window=5)
    for i in range(101):
        log.record(i, _times(i), dropped=i // 10, people=1)
    assert log.stage_ms() == pytest.approx({"pre": 1, "inf": 2, "post": 3, "smooth": 0.5,
                                            "render": 4}, abs=1e-6)
    # render_end(i) = 100 + i/20 + 0.010 + i/1000: one frame every 0.051 s
    assert log.rolling_fps() == pytest.approx(1 / (0.05 + 0.001))
    s = log.close()
    assert s["frames"] == 101 and s["dropped"] == 10
    # mean FPS = (frames - 1) / (last render end - first capture)
    assert s["fps_mean"] == pytest.approx(100 / (100 * 0.051 + 0.010), abs=1e-3)
    assert s["latency_ms_p50"] == pytest.approx(60.0)
    assert s["latency_ms_p99"] == pytest.approx(109.0)
    assert json.loads(summary_path(tmp_path / "run.jsonl").read_text()) == json.loads(json.dumps(s))
    recs = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert recs[3]["t_capture"] == pytest.approx(0.15)
    assert recs[3]["latency_ms"] == pytest.approx(13)
    assert "101 frames" in format_summary(s) and "backend b" in format_summary(s)


def test_empty_log_summary_is_valid(tmp_path):
    s = FpsLog(tmp_path / "e.jsonl").close()
    assert s["frames"] == 0 and s["fps_mean"] is None and s["latency_ms_p50"] is None
    assert "0 frames" in format_summary(s)

"""Pipeline end to end with stand-in parts, fault injection, the FPS log, Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rt_helpers as h

import edgepose.app.cli
from edgepose.errors import SourceError
from edgepose.realtime.capture import CaptureOptions, CaptureThread
from edgepose.realtime.fpslog import FIELDS, FpsLog, summary_path
from edgepose.errors import PipelineError
from edgepose.realtime.pipeline import Pipeline, PipelineOptions
from edgepose.realtime.render import Renderer, RenderOptions, VideoSink
from edgepose.realtime.tracking import PersonTracker

REPO = Path(__file__).resolve().parents[2]


def _pipeline(source, backend, log_path=None, every_frame=True, frames=None, sink=None,
              stall=None, on_frame=None, keypoint_log=None):
    cap = CaptureThread(lambda: source, CaptureOptions(every_frame=every_frame))
    log = FpsLog(log_path, info={"backend": backend.name, "model": backend.meta.name})
    return Pipeline(cap, backend, backend.meta, PersonTracker(),
                    Renderer(backend.meta.limbs, RenderOptions()), log, sink=sink,
                    opts=PipelineOptions(frames=frames, stall_timeout_s=stall,
                                         on_frame=on_frame), keypoint_log=keypoint_log)


def _records(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_clean_run_every_frame_log_and_video(tmp_path):
    seen = []
    be = h.CentreBackend(h.tiny_meta())
    p = _pipeline(h.ScriptedSource(25), be, tmp_path / "log.jsonl",
                  sink=VideoSink(str(tmp_path / "out.mp4"), 30),
                  on_frame=lambda f, people: seen.append((f.id, people[0].keypoints.copy())))
    res = p.run()
    assert res.reason == "eos" and not p.leftover_threads()
    recs = _records(tmp_path / "log.jsonl")
    assert [r["frame"] for r in recs] == list(range(25)), "every frame logged, in order"
    assert set(recs[0]) == set(FIELDS)
    for r in recs:
        assert (r["t_capture"] <= r["t_pre_start"] <= r["t_pre_end"] <= r["t_inf_start"]
                <= r["t_inf_end"] <= r["t_post_start"] <= r["t_post_end"]
                <= r["t_render_start"] <= r["t_render_end"]), r
        assert r["latency_ms"] == pytest.approx((r["t_render_end"] - r["t_capture"]) * 1e3,
                                                abs=1e-2)
    s = json.loads(summary_path(tmp_path / "log.jsonl").read_text())
    assert s["frames"] == 25 and s["dropped"] == 0 and s["backend"] == be.name
    assert s["latency_ms_p50"] <= s["latency_ms_p90"] <= s["latency_ms_p99"]
    import cv2
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 25
    cap.release()
    # first frame: whole-frame crop -> the ring of joints is centred on the frame centre
    assert np.abs(seen[0][1].mean(0) - [79.5, 59.5]).max() < 1.0


def test_csv_log(tmp_path):
    p = _pipeline(h.ScriptedSource(6), h.CentreBackend(h.tiny_meta()), tmp_path / "log.csv")
    p.run()
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["frame"]) for r in rows] == list(range(6)) and list(rows[0]) == list(FIELDS)
    assert summary_path(tmp_path / "log.csv").is_file()


def _assert_fault_ended_cleanly(p, log, t0, n_min):
    assert time.perf_counter() - t0 < 2.0 + 1.0, "pipeline took too long to stop"
    assert not p.leftover_threads() and not h.pipeline_threads()
    recs = _records(log)
    assert len(recs) >= n_min, f"log not flushed: {len(recs)} records"
    assert json.loads(summary_path(log).read_text())["frames"] == len(recs)


def test_source_raising_mid_stream_stops_with_clear_error(tmp_path):
    log = tmp_path / "log.jsonl"
    p = _pipeline(h.ScriptedSource(10, mode="raise"), h.CentreBackend(h.tiny_meta()), log)
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="simulated device read error"):
        p.run()
    _assert_fault_ended_cleanly(p, log, t0, 1)


def test_backend_raising_stops_within_2s(tmp_path):
    log = tmp_path / "log.jsonl"
    src = h.ScriptedSource(1000, delay=0.001)
    p = _pipeline(src, h.FailingBackend(h.tiny_meta(), fail_at=8), log, every_frame=False)
    t0 = time.perf_counter()
    with pytest.raises(PipelineError, match="inference stage failed.*simulated inference"):
        p.run()
    _assert_fault_ended_cleanly(p, log, t0, 1)
    assert src.released, "the source must be released"


def test_the_pipeline_owns_its_keypoint_log(tmp_path):
    """One owner: the pipeline writes each rendered frame's people (before ``on_frame``)
    and closes the keypoint log on every exit path, a failing stage included."""
    from edgepose.realtime.keypoint_log import KeypointLog

    order = []
    kp = KeypointLog(tmp_path / "poses.jsonl")
    kp_write = kp.write
    kp.write = lambda f, people: (order.append("log"), kp_write(f, people))
    p = _pipeline(h.ScriptedSource(1000, delay=0.001), h.FailingBackend(h.tiny_meta(), 6),
                  tmp_path / "log.jsonl", every_frame=False, keypoint_log=kp,
                  on_frame=lambda f, people: order.append("hook"))
    with pytest.raises(PipelineError, match="simulated inference"):
        p.run()
    lines = (tmp_path / "poses.jsonl").read_text().splitlines()
    assert len(lines) == p.rendered >= 1 and kp._f is None, "written per frame, then closed"
    assert order[:2] == ["log", "hook"]
    assert json.loads(lines[0])["people"][0]["keypoints"], "each person's keypoints"


def test_stalled_live_source_is_an_error(tmp_path):
    log = tmp_path / "log.jsonl"
    src = h.ScriptedSource(5, mode="stall", live=True)
    p = _pipeline(src, h.CentreBackend(h.tiny_meta()), log, stall=0.3)
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="no frame for"):
        p.run()
    _assert_fault_ended_cleanly(p, log, t0, 5)


def test_render_stage_error_is_reported(tmp_path):
    log = tmp_path / "log.jsonl"
    sink = VideoSink(str(tmp_path / "missing_dir" / "out.mp4"), 30)
    p = _pipeline(h.ScriptedSource(50), h.CentreBackend(h.tiny_meta()), log, sink=sink)
    with pytest.raises(Exception, match="missing_dir"):
        p.run()
    assert not p.leftover_threads()


def test_frames_limit(tmp_path):
    p = _pipeline(h.ScriptedSource(100), h.CentreBackend(h.tiny_meta()), tmp_path / "l.jsonl",
                  frames=7)
    assert p.run().reason == "frames"
    assert len(_records(tmp_path / "l.jsonl")) == 7


def _cli(argv, monkeypatch, backend):
    """Run the real CLI with ``backend`` in place of the loaded model (fault injection)."""
    import edgepose.engines.backend
    monkeypatch.setattr(edgepose.engines.backend, "load_backend", lambda *a, **k: backend)
    return edgepose.app.cli.main(argv)


def test_cli_exit_codes_on_faults(tmp_path, monkeypatch, capsys, numbered_video):
    video, n = numbered_video
    log = tmp_path / "a.jsonl"
    base = ["run", "--model", "x.onnx", "--headless", "--log", str(log)]
    rc = _cli(base + ["--source", str(video), "--every-frame"], monkeypatch,
              h.CentreBackend(h.tiny_meta()))
    assert rc == 0 and len(_records(log)) == n, "clean end of file exits 0 with every frame"
    t0 = time.perf_counter()
    rc = _cli(base + ["--source", str(video), "--every-frame"], monkeypatch,
              h.FailingBackend(h.tiny_meta(), 3))
    assert rc == 2 and time.perf_counter() - t0 < 3.0
    err = capsys.readouterr().err
    assert "edgepose run: error: inference stage failed" in err and "Traceback" not in err
    assert summary_path(log).is_file()
    rc = _cli(["run", "--model", "x.onnx", "--headless", "--source", "63"], monkeypatch,
              h.CentreBackend(h.tiny_meta()))
    assert rc == 2 and "camera 63 could not be opened" in capsys.readouterr().err


def test_ctrl_c_stops_within_2s_flushes_and_exits_130(tmp_path, template_onnx):
    log = tmp_path / "live.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "edgepose", "run", "--model",
         str(template_onnx), "--source", "demo", "--demo-size", "160x120", "--headless",
         "--threads", "1", "--log", str(log)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (log.exists() and log.stat().st_size > 2000):
            time.sleep(0.1)
        assert log.exists() and log.stat().st_size > 2000, "the app never started logging"
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler dumps every thread's stack
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"edgepose run ignored Ctrl-C for 10 s; its threads:\n{err[-6000:]}")
        took = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, f"exit {proc.returncode}: {err[-500:]}"
    assert took < 2.0, f"Ctrl-C took {took:.2f} s"
    recs = _records(log)  # every line complete JSON: flushed, not cut mid-record
    s = json.loads(summary_path(log).read_text())
    assert s["frames"] == len(recs) > 0 and "interrupted" in err

"""Unattended runs (issue 30, item 3): SIGTERM and SIGHUP stop `edgepose run` like Ctrl-C
(video finalised, logs and summary written, exit 128 + signal), and a recording in a
crash-safe container (.mkv / .avi) stays playable after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import rt_helpers as h

from edgepose.realtime.fpslog import summary_path

REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path, model, save: Path, log: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "edgepose", "run", "--model", str(model), "--source", "demo",
         "--demo-size", "320x240", "--headless", "--threads", "1", "--log", str(log),
         "--save", str(save)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_frames(proc, log: Path, frames: int) -> None:
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= frames:
            return
        time.sleep(0.1)
    pytest.fail(f"the run never logged {frames} frames: {proc.stderr.read()[-500:] if proc.poll() is not None else ''}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_and_sighup_stop_like_ctrl_c(sig, tmp_path, template_onnx):
    save, log = tmp_path / "out.mp4", tmp_path / "live.jsonl"
    proc = _start(tmp_path, template_onnx, save, log)
    try:
        _wait_frames(proc, log, 20)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, f"exit {proc.returncode}: {err[-600:]}"
    assert f"interrupted by {sig.name}" in err and "Traceback" not in err, err[-600:]
    summary = json.loads(summary_path(log).read_text())
    frames = h.count_video_frames(save)
    assert frames == summary["frames"] >= 20, (frames, summary["frames"])


def test_a_crash_safe_recording_survives_kill_9(tmp_path, template_onnx):
    """.mkv keeps what the writer flushed; the same kill leaves an .mp4 unplayable (shown
    side by side, so the test fails if either claim stops being true)."""
    got = {}
    for suffix in (".mkv", ".mp4"):
        save, log = tmp_path / f"out{suffix}", tmp_path / f"live{suffix}.jsonl"
        proc = _start(tmp_path, template_onnx, save, log)
        try:
            _wait_frames(proc, log, 150)
            proc.kill()
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        got[suffix] = (h.count_video_frames(save), log.read_text().count("\n"))
    mkv, logged = got[".mkv"]
    assert mkv >= 30 and mkv <= logged + 5, got
    assert got[".mp4"][0] == 0, got


def test_an_unknown_video_container_is_one_line(tmp_path, template_onnx, capsys):
    from edgepose.app.cli import main

    code = main(["run", "--model", str(template_onnx), "--source", "demo", "--headless",
                 "--frames", "3", "--save", str(tmp_path / "out.gif")])
    err = capsys.readouterr().err
    assert code == 2 and ".mkv / .avi" in err and "Traceback" not in err, err


def test_file_mode_logs_and_smooths_on_the_videos_clock(tmp_path):
    """Issue 32: in a video file, frame i's time is i / fps (the keypoint log's ``t``, and
    the clock One Euro smoothing sees), not the time it happened to be processed."""
    from edgepose.app.cli import main

    clip = REPO / "tests" / "assets" / "clip" / "vtest_16.mp4"
    fps = cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FPS)
    kp = tmp_path / "kp.jsonl"
    assert main(["run", "--source", str(clip), "--headless", "--quiet", "--threads", "1",
                 "--keypoints", str(kp)]) == 0
    ts = [json.loads(line)["t"] for line in kp.read_text().splitlines()]
    assert len(ts) == 16
    assert ts == pytest.approx([i / fps for i in range(16)], abs=1e-3), ts

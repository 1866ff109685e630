"""`edgepose demo` / `edgepose run` end to end through ONNX Runtime on the demo scene."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import rt_helpers as h

import edgepose.app.cli
from edgepose.bundled import DEMO_MODEL
from edgepose.realtime.runner import RunOptions, run_app
from edgepose.realtime.fpslog import summary_path
from edgepose.realtime.pipeline import PipelineOptions
from edgepose.realtime.sources import SourceOptions

N = 12


def _check_outputs(tmp_path, n):
    assert h.count_video_frames(tmp_path / "out.mp4") == n, "video must hold exactly N frames"
    recs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(recs) == n, f"{len(recs)} log records for {n} frames"
    s = json.loads(summary_path(tmp_path / "log.jsonl").read_text())
    assert s["frames"] == n and s["backend"].startswith("onnxruntime")
    return recs, s


def test_demo_command_with_an_onnx_model(tmp_path, template_onnx):
    """Real ONNX Runtime backend (a tiny hand-built ONNX graph), real demo scene, CLI."""
    rc = edgepose.app.cli.main([
        "demo", "--model", str(template_onnx), "--headless", "--frames", str(N),
        "--demo-fps", "0", "--demo-size", "256x192", "--threads", "1",
        "--save", str(tmp_path / "out.mp4"), "--log", str(tmp_path / "log.jsonl")])
    assert rc == 0
    recs, s = _check_outputs(tmp_path, N)
    assert s["model"] == "standin" and s["input_size"] == [64, 48]


def test_demo_bundled_model_video_log_and_accuracy(tmp_path):
    rc = edgepose.app.cli.main([
        "demo", "--headless", "--frames", str(N), "--demo-fps", "0", "--threads", "1",
        "--save", str(tmp_path / "out.mp4"), "--log", str(tmp_path / "log.jsonl")])
    assert rc == 0
    _check_outputs(tmp_path, N)

    # Accuracy: every frame's smoothed keypoints vs the scene's exact ground truth.
    # PCK@0.2: a visible joint counts as correct within 0.2 x max(bbox w, h) of the truth.
    hits, total, frames = 0, 0, []
    opts = RunOptions(
        model=str(DEMO_MODEL), source="synthetic", headless=True, threads=1, quiet=True,
        source_opts=SourceOptions(demo_fps=0, demo_size=(320, 240)),
        pipeline=PipelineOptions(frames=40, on_frame=lambda f, p: frames.append((f, p))),
    )
    opts.capture.every_frame = True
    run_app(opts)
    for frame, people in frames[5:]:  # the first frames acquire the person
        assert people, f"no person in frame {frame.id}"
        truth = frame.truth
        vis = np.asarray(truth["visible"]) > 0
        err = np.linalg.norm(people[0].keypoints - truth["keypoints"], axis=-1)
        tol = 0.2 * max(truth["bbox"][2], truth["bbox"][3])
        hits += int((err[vis] <= tol).sum())
        total += int(vis.sum())
    pck = hits / max(total, 1)
    assert pck >= 0.7, f"PCK@0.2 of the synthetic model on the synthetic scene is {pck:.2f}"


def test_bad_output_folder_and_missing_model_are_one_line_errors(tmp_path, template_onnx,
                                                                  capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc = edgepose.app.cli.main(["demo", "--model", str(template_onnx), "--headless",
                            "--frames", "2", "--save", str(afile / "o.mp4")])
    assert rc == 2 and "is a file, not a folder" in capsys.readouterr().err
    # a missing folder is made (as for every output), not an error
    rc = edgepose.app.cli.main(["demo", "--model", str(template_onnx), "--headless",
                            "--frames", "2", "--save", str(tmp_path / "new" / "o.mp4")])
    assert rc == 0 and (tmp_path / "new" / "o.mp4").stat().st_size > 0
    rc = edgepose.app.cli.main(["run", "--model", str(tmp_path / "missing.onnx"),
                            "--source", "demo", "--headless"])
    err = capsys.readouterr().err
    assert rc == 2 and "missing.onnx" in err and "Traceback" not in err


def test_plain_demo_without_a_display_makes_a_bounded_video(tmp_path, monkeypatch):
    """`edgepose demo` with no options on a machine without a GUI must not loop silently
    forever: it runs a fixed number of frames and leaves a video to look at."""
    import edgepose.realtime.render as render
    from edgepose.app.cli import main
    from edgepose.app.commands import demo

    monkeypatch.setattr(render, "gui_available", lambda: False)
    monkeypatch.setattr(demo, "DEFAULT_HEADLESS_FRAMES", 12)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--threads", "1", "--quiet"]) == 0
    cap = cv2.VideoCapture(str(tmp_path / demo.DEFAULT_HEADLESS_SAVE))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 12, f"expected a 12-frame video, read {n}"

"""A new user's mistakes: one line and exit status 2, never a traceback; files play whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
LSP = ROOT / "tests" / "assets" / "lsp"


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    err = [e for e in err if not e.startswith("edgepose: no --model")]
    assert len(err) == 1 and "Traceback" not in err[0], err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("device,msg", [("cuda", "no CUDA GPU"), ("gpu", "unknown device")])
def test_train_and_eval_device_errors(synth_coco, tmp_path, capsys, device, msg):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{backbone: resnet18, head: dsnt, stride: 8, input_size: [64, 64]}}\n"
                   f"data: {{train_ann: {synth_coco.train_json}, "
                   f"train_images: {synth_coco.image_root('train')}}}\n")
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["train", "--config", str(cfg), "--device", device, "--out",
                 str(tmp_path / "run")]) == 2
    one_line_error(capsys, msg)


@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_eval_device_errors(synth_coco, tmp_path, capsys, device):
    import torch

    from edgepose.checkpoint import save_checkpoint
    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    meta = ModelMeta(head="dsnt", backbone="resnet18", input_size=(64, 64), stride=8,
                     head_cfg={"width": 32})
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, build_model(meta), meta)
    assert main(["eval", str(ckpt), "--data", str(synth_coco.val_json), "--images",
                 str(synth_coco.image_root("val")), "--device", device]) == 2
    one_line_error(capsys, device)


def write_clip(path: Path, frames: int = 45, fps: float = 15.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 240))
    img = cv2.resize(cv2.imread(str(LSP / "im1004.jpg")), (160, 240))
    for i in range(frames):
        w.write(np.roll(img, i, axis=1))
    w.release()
    return path


def count_frames(path: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, fps


def test_a_video_file_plays_whole_at_its_own_rate(tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.avi")
    out = tmp_path / "out.mp4"
    assert main(["run", "--source", str(clip), "--headless", "--save", str(out),
                 "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "using the bundled" in err, "run without --model names the bundled model"
    assert "dropped 0" in err
    n, fps = count_frames(out)
    assert n == 45 and fps == pytest.approx(15.0, abs=0.5), (n, fps)


def test_source_that_never_opens_prints_only_the_error(tmp_path, capsys):
    assert main(["run", "--source", str(tmp_path / "missing.mp4"), "--headless"]) == 2
    line = one_line_error(capsys, "missing.mp4")
    assert "0 frames" not in line


@pytest.mark.parametrize("flag,value,msg", [
    ("--smooth-beta", "-1", "--smooth-beta >= 0"), ("--threads", "0", "--threads must be >= 1"),
    ("--conf", "3", "--conf must be in"),
])
def test_run_refuses_bad_values_before_work(flag, value, msg, capsys):
    assert main(["run", "--source", "demo", "--headless", flag, value]) == 2
    one_line_error(capsys, msg)


def test_headless_demo_with_save_stops(tmp_path):
    """`edgepose demo --headless --save x.mp4` used to run forever."""
    out = tmp_path / "x.mp4"
    r = subprocess.run([sys.executable, "-m", "edgepose", "demo", "--headless", "--save",
                        str(out), "--demo-fps", "0", "--threads", "1"], capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "running 300 frames" in r.stderr and "--save out.mp4" not in r.stderr
    assert count_frames(out)[0] == 300


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory):
    """A tiny DSNT and a tiny NerPE checkpoint (random weights) and the DSNT's ONNX."""
    from edgepose.checkpoint import save_checkpoint
    from edgepose.engines.export import ExportOptions, export_checkpoint
    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model

    d = tmp_path_factory.mktemp("tiny")
    out = {}
    for head, cfg in (("dsnt", {"width": 32}), ("nerpe", {"feat_dim": 32, "hidden": [32, 32]})):
        meta = ModelMeta(head=head, backbone="resnet18", input_size=(64, 64), stride=8,
                         head_cfg=cfg)
        out[head] = d / f"{head}.pt"
        save_checkpoint(out[head], build_model(meta), meta)
    out["onnx"] = d / "dsnt.onnx"
    export_checkpoint(out["dsnt"], out["onnx"], ExportOptions(), progress=False)
    return out


def test_calibrate_mistakes_are_one_line_and_early(tiny_ckpts, capsys):
    assert main(["calibrate", str(tiny_ckpts["dsnt"]), "--data", str(LSP)]) == 2
    one_line_error(capsys, "export a checkpoint first")
    assert main(["calibrate", str(tiny_ckpts["onnx"]), "--data", str(LSP), "--method",
                 "percentile", "--percentile", "150"]) == 2
    one_line_error(capsys, "--percentile 150")


def test_export_mistakes(tiny_ckpts, tmp_path, capsys):
    assert main(["export", str(tiny_ckpts["nerpe"]), "--out", str(tmp_path / "n.onnx"),
                 "--decoder", "dense:4096", "--no-progress"]) == 2
    one_line_error(capsys, "GiB", "512x512")
    assert main(["export", str(tiny_ckpts["dsnt"]), "--out", str(tmp_path / "d.onnx"),
                 "--decoder", "dense:64", "--no-progress"]) == 2
    one_line_error(capsys, "NerPE models only")
    assert main(["export", str(tiny_ckpts["dsnt"]), "--out", str(tmp_path / "d.onnx"),
                 "--tol-px", "-1", "--no-progress"]) == 2
    one_line_error(capsys, "tolerances must be > 0")


def test_heatmap_mistakes(tiny_ckpts, tmp_path, capsys):
    img = str(LSP / "im1001.jpg")
    base = ["heatmap", str(tiny_ckpts["nerpe"]), img, "--res", "32"]
    assert main(base + ["--out", str(tmp_path / "hnoext")]) == 2
    one_line_error(capsys, "hnoext.png")
    assert main(base + ["--alpha", "3", "--out", str(tmp_path / "h.png")]) == 2
    one_line_error(capsys, "--alpha 3")
    assert main(base + ["--box", "5000", "5000", "10", "10", "--out", str(tmp_path / "h.png")]) == 2
    one_line_error(capsys, "outside")
    assert main(base + ["--out", str(tmp_path / "h.png")]) == 0


def test_train_refuses_an_existing_run_and_an_empty_resume(synth_coco, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{backbone: resnet18, head: dsnt, stride: 8, input_size: [64, 64],"
                   f" head_cfg: {{width: 32}}}}\n"
                   f"data: {{train_ann: {synth_coco.train_json}, "
                   f"train_images: {synth_coco.image_root('train')}}}\n"
                   f"optim: {{epochs: 1, batch_size: 8}}\nmax_steps_per_epoch: 1\n")
    run = tmp_path / "run"
    common = ["train", "--config", str(cfg), "--out", str(run), "--no-progress", "--threads", "1"]
    assert main(common) == 0
    out = capsys.readouterr().out
    assert "epoch=1" in out, "--no-progress still prints one line per epoch"
    assert main(common) == 2
    one_line_error(capsys, "already holds a run", "--overwrite")
    assert main(common + ["--overwrite"]) == 0
    assert len((run / "log.jsonl").read_text().splitlines()) == 1, "old log replaced"
    capsys.readouterr()
    assert main(common + ["--resume", str(run / "last.pt")]) == 2
    one_line_error(capsys, "nothing to do")
    assert main(common + ["--resume", str(run / "last.pt"), "--epochs", "2"]) == 0
    assert "schedule now spans 2 epochs instead of 1" in capsys.readouterr().out


def test_profile_says_how_many_points_were_skipped_and_why():
    from edgepose.app.commands.profile import skipped_summary

    rows = [{"status": "ok"}, {"status": "skipped", "note": "TensorRT not installed"},
            {"status": "skipped", "note": "TensorRT not installed"},
            {"status": "skipped", "note": "int8 needs onnxruntime"}]
    line = skipped_summary(rows)
    assert line.startswith("3 of 4 point(s) skipped")
    assert "2 x TensorRT not installed" in line and "1 x int8 needs onnxruntime" in line
    assert skipped_summary([{"status": "ok"}]) is None


def test_synth_rerun_leaves_no_old_images(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["synth", str(out), "--num", "6", "--val", "0", "--size", "64"]) == 0
    assert main(["synth", str(out), "--num", "3", "--val", "0", "--size", "64"]) == 0
    assert len(list((out / "images" / "train").iterdir())) == 3
    assert "replacing the 6 images" in capsys.readouterr().out


def test_eval_names_its_own_flags(tiny_ckpts, synth_coco, tmp_path, capsys):
    assert main(["eval", str(tiny_ckpts["dsnt"]), "--data", str(synth_coco.val_json),
                 "--images", str(tmp_path / "nope")]) == 2
    line = one_line_error(capsys, "--images", "nope")
    assert "config" not in line


def test_failed_parity_names_the_out_file(tiny_ckpts, tmp_path, capsys):
    out = tmp_path / "mine.onnx"
    # a tolerance no export meets (> 0, so it is accepted) makes the parity check fail
    assert main(["export", str(tiny_ckpts["dsnt"]), "--out", str(out), "--tol-px", "1e-12",
                 "--no-progress"]) == 2
    line = one_line_error(capsys, "mine.onnx", "disagrees")
    assert ".mine.onnx." not in line, "not the temporary file"
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["train", "eval", "export", "build", "calibrate", "profile",
                                 "label", "predict", "convert"])
def test_every_long_command_takes_no_progress(cmd, capsys):
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    assert "--no-progress" in capsys.readouterr().out


@pytest.mark.parametrize("cmd,flags", [
    ("build", ["--precision", "--min-batch", "--max-batch"]),
    ("heatmap", ["--alpha", "--joint"]), ("eval", ["--batch-size", "--dataset"]),
])
def test_help_shows_defaults(cmd, flags, capsys):
    import re

    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in flags:
        m = re.search(re.escape(f) + r"\b[^-]*?\(default", text)
        assert m, f"{cmd} --help: no default shown for {f}"


def test_pretrained_offline_checks_local_inputs_first_then_fails_fast(synth_coco, tmp_path,
                                                                      capsys, monkeypatch):
    """``pretrained: true`` without a reachable hub: a missing annotation file is reported
    first; with the data in place the error is one full line (no retries, no cut-off)."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {backbone: resnet18, head: dsnt, stride: 8, input_size: [64, 64], "
                   "pretrained: true}\n"
                   f"data: {{train_ann: {tmp_path / 'missing.json'}, train_images: {tmp_path}}}\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r1")]) == 2
    one_line_error(capsys, "missing.json", "annotation file not found")
    cfg.write_text("model: {backbone: resnet18, head: dsnt, stride: 8, input_size: [64, 64], "
                   "pretrained: true}\n"
                   f"data: {{train_ann: {synth_coco.train_json}, "
                   f"train_images: {synth_coco.image_root('train')}}}\n")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r2")]) == 2
    err = one_line_error(capsys, "hub is unreachable", "local weights file", "or to false")
    assert err.rstrip().endswith("or to false")


def test_a_stride_4_cut_of_a_classification_backbone_is_refused(synth_coco, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {backbone: resnet18, head: dsnt, stride: 4, input_size: [64, 64]}\n"
                   f"data: {{train_ann: {synth_coco.train_json}, "
                   f"train_images: {synth_coco.image_root('train')}}}\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "stride 4", "use stride 8 or 16")
    assert not (tmp_path / "r" / "last.pt").exists()

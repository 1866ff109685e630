"""``edgepose calibrate`` end to end: a tiny model quickly, a trained model for accuracy."""

from __future__ import annotations

import json

import onnx
import pytest

from edgepose.engines.int8 import nonzero_zero_points
from edgepose.engines.meta_io import read_meta
from edgepose.app.cli import main


def test_calibrate_folder_no_compare(tiny_onnx, image_dir, tmp_path, capsys):
    out = tmp_path / "tiny.int8.onnx"
    rc = main(["calibrate", str(tiny_onnx), "--data", str(image_dir), "--out", str(out),
               "--count", "16", "--batch", "4", "--method", "entropy", "--no-compare",
               "--quiet"])
    assert rc == 0
    assert "INT8 Q/DQ for tensorrt" in capsys.readouterr().out
    assert read_meta(out).precision == "int8"
    assert nonzero_zero_points(onnx.load(str(out))) == []


def test_calibrate_cpu_target_and_report(tiny_onnx, image_dir, tmp_path, capsys):
    out, rep = tmp_path / "tiny.cpu.onnx", tmp_path / "report.json"
    rc = main(["calibrate", str(tiny_onnx), "--data", str(image_dir), "--out", str(out),
               "--count", "16", "--target", "cpu", "--threads", "1", "--runs", "3",
               "--report", str(rep), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| fp32 |" in text and "| int8 |" in text and "speed-up" in text
    report = json.loads(rep.read_text())
    assert report["int8"]["latency_ms"] > 0 and report["calibration"]["target"] == "cpu"
    assert nonzero_zero_points(onnx.load(str(out))), "the cpu target uses uint8 activations"


def test_calibrate_empty_folder_is_one_line_error(tiny_onnx, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["calibrate", str(tiny_onnx), "--data", str(tmp_path / "empty"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "found 0 images" in err and "at least 16" in err, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_trained_model_int8_keeps_pck(synth_coco, tmp_path, capsys):
    """Train a small DSNT model on the synthetic set, calibrate on the train split, and
    compare on the held-out split: PCK@0.05 within 2 points of FP32."""
    from edgepose.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from edgepose.train import train
    from edgepose.engines.export import ExportOptions, export_checkpoint

    cfg = TrainConfig(
        model=ModelConfig(backbone="resnet18", head="dsnt", stride=8, input_size=(64, 64)),
        data=DataConfig(train_ann=str(synth_coco.train_json),
                        train_images=str(synth_coco.image_root("train")), augment=False),
        optim=OptimConfig(epochs=8, batch_size=16, lr=3e-3, warmup_epochs=0),
        out=str(tmp_path / "run"), device="cpu", progress=False,
    )
    train(cfg)
    fp32 = tmp_path / "model.onnx"
    export_checkpoint(tmp_path / "run" / "last.pt", fp32, ExportOptions(), progress=False)
    rep = tmp_path / "report.json"
    rc = main(["calibrate", str(fp32), "--data", str(synth_coco.train_json), "--count", "64",
               "--eval-data", str(synth_coco.val_json),
               "--eval-images", str(synth_coco.image_root("val")),
               "--threads", "1", "--runs", "5", "--report", str(rep), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(rep.read_text())
    f, q = r["fp32"]["pck@0.05"], r["int8"]["pck@0.05"]
    assert f > 0.05, f"training did not learn anything (FP32 PCK@0.05 = {f:.3f})"
    assert abs(f - q) <= 0.02, f"INT8 PCK@0.05 {q:.3f} vs FP32 {f:.3f}"
    assert abs(r["int8"]["mean_px_error"] - r["fp32"]["mean_px_error"]) < 1.0

"""``edgepose profile`` end to end: real networks exported to ONNX and timed in ONNX Runtime,
real CSV / Markdown / PNG files, a tiny trained checkpoint evaluated on the synthetic set."""

from __future__ import annotations

import json
import math

import pytest

from edgepose.app.cli import main
from edgepose.app.profiling.results_files import read_csv
from edgepose.app.profiling.run_points import ACCURACY, REQUIRED_OK

OUTPUTS = ("results.csv", "results.md", "accuracy_vs_fps.png", "latency_vs_resolution.png",
           "system.json")
FAST = ["--batch", "2", "--repeats", "3", "--warmup", "1", "--threads", "1", "--quiet"]


def _is_number(v: str) -> bool:
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


def _check_outputs(out):
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, f"{name} missing"
    import matplotlib.image as mpimg

    for png in ("accuracy_vs_fps.png", "latency_vs_resolution.png"):
        assert mpimg.imread(out / png).ndim == 3, f"{png} is not an image"


def test_profile_tiny_sweep_onnxruntime(tmp_path):
    """2 sizes x 2 heads x onnxruntime: one row per point, every required number present."""
    out = tmp_path / "prof"
    rc = main(["profile", "--sizes", "64,96", "--heads", "dsnt,heatmap", "--backbones", "resnet18",
               "--backends", "onnxruntime", "--precisions", "fp32", "--out", str(out), *FAST])
    assert rc == 0, (out / "errors.log").read_text() if (out / "errors.log").exists() else rc
    _check_outputs(out)
    rows = read_csv(out / "results.csv")
    assert len(rows) == 4, "exactly one row per point"
    got = sorted((r["head"], r["input"]) for r in rows)
    assert got == [("dsnt", "64"), ("dsnt", "96"), ("heatmap", "64"), ("heatmap", "96")]
    for r in rows:
        assert r["status"] == "ok", r["note"]
        for c in REQUIRED_OK:
            assert _is_number(r[c]), f"{r['head']} {r['input']}: column {c} = {r[c]!r}"
        assert float(r["p99_ms"]) >= float(r["p90_ms"]) >= float(r["latency_ms"]) > 0
        assert float(r["params_m"]) > 0.1 and float(r["gflops"]) > 0
        assert r["trained"] == "no" and "speed only" in r["note"], "speed-only point says so"
        assert all(r[c] == "" for c in ACCURACY), "no accuracy without a trained checkpoint"
        assert r["batch"] == "2" and r["backend"] == "onnxruntime"
    # same network at a bigger input costs more
    flops = {(r["head"], r["input"]): float(r["gflops"]) for r in rows}
    assert flops[("dsnt", "96")] > flops[("dsnt", "64")] * 1.5
    md = (out / "results.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("| resnet18")]
    assert len(table) == 4, md
    assert "random weights" in md
    system = json.loads((out / "system.json").read_text())
    assert system["versions"]["onnxruntime"] and system["versions"]["torch"]
    assert system["machine"]["cpus_usable"] >= 1


def test_profile_skips_unsupported_and_records_errors(tmp_path):
    """Unsupported combinations become 'skipped' rows with the reason; a failing point
    becomes an 'error' row (exit status 1) unless --fail-fast (a clear one-line error)."""
    out = tmp_path / "skip"
    rc = main(["profile", "--sizes", "64", "--heads", "dsnt", "--backends", "torch",
               "--precisions", "int8", "--out", str(out), *FAST])
    assert rc == 0
    _check_outputs(out)
    (row,) = read_csv(out / "results.csv")
    assert row["status"] == "skipped" and "torch backend" in row["note"]
    assert "**skipped**" in (out / "results.md").read_text()

    out = tmp_path / "err"
    rc = main(["profile", "--sizes", "64", "--heads", "dsnt", "--backbones", "no_such_net",
               "--out", str(out), *FAST])
    assert rc == 1, "a failed point makes the run exit 1"
    (row,) = read_csv(out / "results.csv")
    assert row["status"] == "error" and "no_such_net" in row["note"], row["note"]
    assert (out / "errors.log").is_file()
    rc = main(["profile", "--sizes", "64", "--heads", "dsnt", "--backbones", "no_such_net",
               "--fail-fast", "--out", str(tmp_path / "ff"), *FAST])
    assert rc == 2, "--fail-fast stops with the point's user-facing error"


def test_profile_bad_options_are_one_line_errors(tmp_path, capsys):
    for args, text in ((["--sizes", "64x"], "64x"), (["--heads", "hourglass"], "hourglass"),
                       (["--data", str(tmp_path / "a.json")], "together"),
                       (["--checkpoint", str(tmp_path / "none.pt")], "not found")):
        rc = main(["profile", "--out", str(tmp_path / "o"), *args])
        err = capsys.readouterr().err
        assert rc == 2 and text in err and "Traceback" not in err, err


def test_profile_ctrl_c_writes_what_is_done(tmp_path, monkeypatch):
    """Ctrl-C during the third point: the two finished rows are written, exit 130."""
    from edgepose.app.profiling import run_points

    real = run_points.Sweep.run_point
    calls = []

    def interrupt_third(self, point):
        calls.append(point)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, point)

    monkeypatch.setattr(run_points.Sweep, "run_point", interrupt_third)
    out = tmp_path / "int"
    rc = main(["profile", "--sizes", "64,96,128", "--heads", "dsnt", "--backends", "tensorrt",
               "--out", str(out), *FAST])
    assert rc == 130
    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 and all(r["status"] == "skipped" for r in rows)
    assert "Interrupted" in (out / "results.md").read_text()
    _check_outputs(out)


@pytest.fixture(scope="module")
def tiny_trained_dsnt(tmp_path_factory, synth_coco):
    """A DSNT resnet18 64x64 checkpoint trained for a few steps by the real training loop."""
    from edgepose.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from edgepose.train import train

    out = tmp_path_factory.mktemp("trained")
    cfg = TrainConfig(
        model=ModelConfig(backbone="resnet18", head="dsnt", input_size=(64, 64)),
        data=DataConfig(train_ann=str(synth_coco.train_json),
                        train_images=str(synth_coco.image_root("train")), augment=False),
        optim=OptimConfig(epochs=1, batch_size=8, warmup_epochs=0.0),
        out=str(out), device="cpu", max_steps_per_epoch=3, progress=False,
    )
    train(cfg)
    ckpt = next(p for name in ("best.pt", "last.pt") if (p := out / name).is_file())
    return ckpt


def test_profile_with_trained_checkpoint_fills_accuracy(tmp_path, synth_coco, tiny_trained_dsnt):
    out = tmp_path / "acc"
    rc = main(["profile", "--checkpoint", f"dsnt={tiny_trained_dsnt}",
               "--data", str(synth_coco.val_json), "--images", str(synth_coco.image_root("val")),
               "--backends", "onnxruntime", "--out", str(out), *FAST])
    assert rc == 0
    _check_outputs(out)
    (row,) = read_csv(out / "results.csv")  # sizes/heads/backbones taken from the checkpoint
    assert (row["head"], row["input"], row["backbone"]) == ("dsnt", "64", "resnet18"), row
    assert row["status"] == "ok" and row["trained"] == "yes", row["note"]
    for c in REQUIRED_OK + ACCURACY:
        assert _is_number(row[c]), f"column {c} = {row[c]!r}"
    assert 0.0 <= float(row["pck@0.05"]) <= float(row["pck@0.1"]) <= 1.0
    assert float(row["mean_err_px"]) > 0
    assert _is_number(row["coco_ap"]) and -1.0 <= float(row["coco_ap"]) <= 1.0
    assert int(row["eval_samples"]) >= 16, "every person of the 16 val images was evaluated"
    assert row["checkpoint"].endswith(tiny_trained_dsnt.name)
    assert "PCK@0.05" in (out / "results.md").read_text()


def test_profile_int8_point_uses_a_qdq_model(tmp_path):
    """fp32 and int8 (ONNX Runtime Q/DQ from the calibration package, synthetic calibration
    images) of one network: both measured, the int8 artifact really is quantized."""
    import onnx

    out = tmp_path / "int8"
    rc = main(["profile", "--sizes", "64", "--heads", "dsnt", "--backends", "onnxruntime",
               "--precisions", "fp32,int8", "--calib-count", "16", "--keep-artifacts",
               "--out", str(out), *FAST])
    assert rc == 0, (out / "errors.log").read_text() if (out / "errors.log").exists() else rc
    rows = {r["precision"]: r for r in read_csv(out / "results.csv")}
    assert sorted(rows) == ["fp32", "int8"]
    for r in rows.values():
        assert r["status"] == "ok" and r["runtime"] == "onnxruntime-cpu", r["note"]
        assert all(_is_number(r[c]) for c in REQUIRED_OK)
    assert rows["int8"]["gflops"] == rows["fp32"]["gflops"], "same network, same FLOPs"
    (qfile,) = (out / "artifacts").glob("*.int8.onnx")
    ops = {n.op_type for n in onnx.load(str(qfile)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops, "int8 point ran a Q/DQ model"
    meta = {p.key: p.value for p in onnx.load(str(qfile)).metadata_props}
    assert json.loads(meta["edgepose"])["precision"] == "int8"

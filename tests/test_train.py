"""Training loop on the tiny synthetic set: learning, checkpoints, exact resume, CLI errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from edgepose.checkpoint import load_checkpoint, load_model, save_checkpoint
from edgepose.app.cli import main
from edgepose.config import TrainConfig
from edgepose.errors import ModelError
from edgepose.evaluate import evaluate_model
from edgepose.models import build_model
from edgepose.data.datasets import build_dataset
from edgepose.train import seed_everything, train

BACKBONE = "mobilenetv3_small_100"  # the fastest tested backbone on 2 CPU cores


def make_config(synth_coco, out: Path, head: str = "heatmap", **optim) -> TrainConfig:
    cfg = TrainConfig()
    cfg.model.backbone, cfg.model.head, cfg.model.input_size = BACKBONE, head, (64, 64)
    d = cfg.data
    d.train_ann, d.train_images = str(synth_coco.train_json), str(synth_coco.image_root("train"))
    d.val_ann, d.val_images = str(synth_coco.val_json), str(synth_coco.image_root("val"))
    d.augment = False
    cfg.optim.batch_size = 16
    for k, v in optim.items():
        setattr(cfg.optim, k, v)
    cfg.out, cfg.progress, cfg.device = str(out), False, "cpu"
    return cfg.validate()


def _val_pck(cfg: TrainConfig, model) -> dict:
    val = build_dataset(cfg.data, cfg.model.to_meta(), train=False)
    return evaluate_model(model, val, batch_size=16, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["heatmap", "dsnt"])
def test_short_training_learns(synth_coco, tmp_path, head):
    cfg = make_config(synth_coco, tmp_path / head, head, epochs=16, lr=3e-3, warmup_epochs=0.5)
    cfg.val_every = 0  # validate only at the end
    seed_everything(cfg.seed)
    before = _val_pck(cfg, build_model(cfg.model.to_meta()))  # same init as train() builds
    result = train(cfg)
    hist = result["history"]
    assert hist[-1]["loss"] < 0.6 * hist[0]["loss"], [h["loss"] for h in hist]
    model, _ = load_model(tmp_path / head / "last.pt")
    after = _val_pck(cfg, model)
    assert after["pck@0.1"] > before["pck@0.1"] + 0.15, (before, after)
    assert after["mean_px_error"] < 0.75 * before["mean_px_error"], (before, after)
    assert hist[-1]["pck@0.1"] == pytest.approx(after["pck@0.1"], abs=1e-9)
    assert 0.0 <= after["AP"] <= 1.0 and "AR" in after  # pycocotools ran on the val set


def test_resume_continues_exactly(synth_coco, tmp_path):
    """2 epochs straight == 1 epoch, stop, resume to 2 (constant lr, no augmentation)."""
    opt = dict(epochs=2, lr=1e-3, schedule="step", milestones=[], warmup_epochs=0)
    straight = make_config(synth_coco, tmp_path / "a", **opt)
    straight.max_steps_per_epoch, straight.val_every = 2, 0
    train(straight)
    first = make_config(synth_coco, tmp_path / "b", **{**opt, "epochs": 1})
    first.max_steps_per_epoch, first.val_every = 2, 0
    train(first)
    ck1 = load_checkpoint(tmp_path / "b" / "last.pt")
    assert ck1["epoch"] == 0 and ck1["optimizer"]["state"], "checkpoint lacks training state"
    resumed = make_config(synth_coco, tmp_path / "b", **opt)
    resumed.max_steps_per_epoch, resumed.val_every = 2, 0
    res = train(resumed, resume=tmp_path / "b" / "last.pt")
    assert [h["epoch"] for h in res["history"]] == [1, 2], res["history"]
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["epoch"] == b["epoch"] == 1
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i]["step"] == sb[i]["step"]
        torch.testing.assert_close(sb[i]["exp_avg_sq"], sa[i]["exp_avg_sq"], rtol=1e-5, atol=1e-9)


def test_resume_from_another_model_is_a_clear_error(synth_coco, tmp_path):
    cfg = make_config(synth_coco, tmp_path / "h", "heatmap", epochs=1)
    cfg.max_steps_per_epoch, cfg.val_every = 1, 0
    train(cfg)
    other = make_config(synth_coco, tmp_path / "d", "dsnt", epochs=1)
    with pytest.raises(ModelError, match="another model"):
        train(other, resume=tmp_path / "h" / "last.pt")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from edgepose.metadata import ModelMeta

    meta = ModelMeta(head="dsnt", backbone=BACKBONE, input_size=(64, 64))
    model = torch.nn.Linear(2, 2)
    path = tmp_path / "last.pt"
    save_checkpoint(path, model, meta, epoch=3)
    good = path.read_bytes()
    real_save = torch.save

    def failing_save(obj, f):
        real_save(obj, f)
        f.seek(10)
        f.truncate()  # a half-written file...
        raise OSError("disk full")  # ...and the writer dies

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, meta, epoch=4)
    assert path.read_bytes() == good, "the previous checkpoint was damaged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"], "temp file left behind"
    assert load_checkpoint(path)["epoch"] == 3


def test_evaluate_backend_callable_matches_torch(synth_coco, tmp_path):
    cfg = make_config(synth_coco, tmp_path, "dsnt")
    torch.manual_seed(0)
    model = build_model(cfg.model.to_meta()).eval()
    val = build_dataset(cfg.data, cfg.model.to_meta(), train=False)

    def backend(batch: np.ndarray) -> dict:  # the engines' Backend interface
        with torch.no_grad():
            c, s = model(torch.from_numpy(batch))
        return {"coords": c.numpy(), "scores": s.numpy()}

    res_path = tmp_path / "res.json"
    m1 = evaluate_model(model, val, batch_size=8, progress=False)
    m2 = evaluate_model(backend, val, batch_size=5, progress=False,
                        coco_results_path=res_path, json_path=tmp_path / "m.json")
    for k in ("mean_px_error", "pck@0.05", "pck@0.1", "AP"):
        assert m1[k] == pytest.approx(m2[k], abs=1e-5), k
    res = json.loads(res_path.read_text())
    assert len(res) == len(val) and len(res[0]["keypoints"]) == 17 * 3
    assert json.loads((tmp_path / "m.json").read_text())["num_samples"] == len(val)


def test_cli_errors_are_one_line(synth_coco, tmp_path, capsys):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("data: {train_ann: nowhere/train.json, train_images: nowhere}\n")
    assert main(["train", "--config", str(cfg_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nowhere/train.json: annotation file not found" in err and "Traceback" not in err
    assert main(["eval", str(tmp_path / "none.pt"), "--data", str(synth_coco.val_json),
                 "--images", str(synth_coco.image_root("val"))]) == 2
    err = capsys.readouterr().err
    assert "none.pt: model file not found" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_cli_train_then_eval(synth_coco, tmp_path, capsys):
    src = make_config(synth_coco, tmp_path / "run", "dsnt", epochs=1)
    src.max_steps_per_epoch = 2
    from edgepose.config import save_config

    save_config(src, tmp_path / "c.yaml")
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--no-progress",
                 "--set", "optim.lr=5e-4"]) == 0
    ckpt = tmp_path / "run" / "last.pt"
    assert load_checkpoint(ckpt)["config"]["optim"]["lr"] == pytest.approx(5e-4)
    capsys.readouterr()
    out_json = tmp_path / "m.json"
    assert main(["eval", str(ckpt), "--data", str(synth_coco.val_json), "--images",
                 str(synth_coco.image_root("val")), "--json", str(out_json),
                 "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "pck@0.1" in table and "AP50" in table, table
    metrics = json.loads(out_json.read_text())
    assert set(metrics) >= {"mean_px_error", "pck@0.05", "pck@0.1", "AP", "AP50", "AR"}
    # the same model through real ONNX Runtime, exported with a fixed batch of 4 (the
    # evaluator batches by 4 and pads the last batch)
    from edgepose.engines.export import ExportOptions, export_checkpoint

    onnx_path = tmp_path / "model.onnx"
    export_checkpoint(ckpt, onnx_path, ExportOptions(static_batch=4), progress=False)
    ort_json = tmp_path / "ort.json"
    assert main(["eval", str(onnx_path), "--data", str(synth_coco.val_json), "--images",
                 str(synth_coco.image_root("val")), "--json", str(ort_json),
                 "--no-progress"]) == 0
    ort = json.loads(ort_json.read_text())
    assert ort["num_samples"] == metrics["num_samples"] and ort["num_samples"] % 4 != 0
    for k in ("mean_px_error", "pck@0.1", "AP"):
        assert ort[k] == pytest.approx(metrics[k], abs=2e-3), (k, ort[k], metrics[k])
    shutil.rmtree(tmp_path / "run")


def test_freeze_bn_keeps_batchnorm_statistics(synth_coco, tmp_path):
    """Fine-tuning from ``model.init`` (a checkpoint's weights) with ``optim.freeze_bn``:
    the weights train, BatchNorm running statistics stay what the checkpoint had."""
    import torch

    from edgepose.checkpoint import load_checkpoint, save_checkpoint
    from edgepose.config import config_from_dict
    from edgepose.models import build_model
    from edgepose.train import train

    model_cfg = {"backbone": "resnet18", "head": "dsnt", "stride": 8, "input_size": [64, 64]}
    meta = config_from_dict({"model": model_cfg}).model.to_meta()
    base = build_model(meta)
    for m in base.modules():  # statistics a fresh model would not have
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.25)
    save_checkpoint(tmp_path / "base.pt", base, meta)
    init = base.state_dict()

    def run(freeze: bool, out):
        cfg = config_from_dict({
            "model": {**model_cfg, "init": str(tmp_path / "base.pt")},
            "data": {"train_ann": str(synth_coco.train_json),
                     "train_images": str(synth_coco.image_root("train")), "augment": False},
            "optim": {"epochs": 1, "batch_size": 4, "lr": 1e-3, "freeze_bn": freeze},
            "out": str(out), "max_steps_per_epoch": 2, "val_every": 0, "progress": False,
            "threads": 1})
        train(cfg)
        return load_checkpoint(out / "last.pt")["model"]

    frozen, free = run(True, tmp_path / "a"), run(False, tmp_path / "b")
    key = next(k for k in frozen if k.endswith("running_mean"))
    assert torch.equal(frozen[key], init[key])  # statistics untouched
    assert not torch.equal(free[key], init[key])  # ... unlike a normal step
    conv = next(k for k in frozen if k.endswith("weight") and frozen[k].ndim == 4)
    assert not torch.equal(frozen[conv], init[conv])  # the weights still trained

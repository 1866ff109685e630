"""Every shipped YAML config loads, validates and describes a model that builds and runs."""

from pathlib import Path

import pytest
import torch

from edgepose.config import load_config
from edgepose.models import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 6, f"expected the shipped configs, found {CONFIGS}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_a_working_model(path):
    cfg = load_config(path).validate()
    meta = cfg.model.to_meta()
    model = build_model(meta).eval()  # never downloads: pretrained is only used by train
    h, w = meta.input_size
    with torch.no_grad():
        coords, scores = model(torch.zeros(1, 3, h, w))
    assert coords.shape == (1, meta.num_joints, 2)
    assert scores.shape == (1, meta.num_joints)
    assert torch.isfinite(coords).all()


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_trains_one_step(path, synth_coco, tmp_path):
    """The config's model, head, augmentation and optimiser run one real training step.

    Data paths point at the session's synthetic COCO set (a config with ``sources`` keeps
    the multi-source path, with two sources); pretrained weights are left out (a hub or a
    file under data/ is not there in CI). An MPII config trains its model with 17 joints
    on the COCO-format set."""
    import math

    from edgepose.config import config_from_dict
    from edgepose.train import train

    d = load_config(path).to_dict()
    d["model"]["pretrained"] = False
    if d["data"]["dataset"] == "mpii":  # MPII's reader has its own tests (tests/data)
        d["model"]["skeleton"] = "coco17"
    train_src = {"ann": str(synth_coco.train_json), "images": str(synth_coco.image_root("train"))}
    val_src = {"ann": str(synth_coco.val_json), "images": str(synth_coco.image_root("val"))}
    data = d["data"]
    if data["sources"]:
        data["sources"] = [dict(train_src, weight=2.0), dict(val_src, weight=1.0)]
    else:
        data["train_ann"], data["train_images"] = train_src["ann"], train_src["images"]
    data.update(dataset="coco", val_ann="", val_images="", workers=0)
    d["optim"].update(epochs=1, batch_size=4)
    d.update(out=str(tmp_path / "run"), max_steps_per_epoch=1, threads=1, progress=False,
             device="cpu", amp=False, sync_bn=False)
    summary = train(config_from_dict(d))
    assert math.isfinite(summary["history"][0]["loss"])
    assert (tmp_path / "run" / "last.pt").is_file()

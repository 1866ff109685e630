"""Training config (YAML + overrides) and the lr schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepose.config import (
    ConfigError, OptimConfig, TrainConfig, apply_overrides, config_from_dict, load_config,
    save_config,
)
from edgepose.errors import ModelError
from edgepose.optim import LRSchedule

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.model.head in ("heatmap", "dsnt", "nerpe")
    assert cfg.model.to_meta().input_size == tuple(cfg.model.input_size)


def test_configs_cover_every_head_at_64_and_128():
    names = {p.stem for p in CONFIGS}
    for head in ("heatmap", "dsnt", "nerpe"):
        for size in (64, 128):
            assert f"synth_{head}_{size}" in names, f"missing configs/synth_{head}_{size}.yaml"


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = TrainConfig()
    cfg.model.head = "dsnt"
    save_config(cfg, tmp_path / "c.yaml")
    back = load_config(tmp_path / "c.yaml")
    assert back.to_dict() == cfg.to_dict()
    new = apply_overrides(back, ["optim.lr=3e-4", "model.input_size=[128, 96]", "seed=5",
                                 "out=2024", "optim.epochs=7.0"])
    assert new.optim.lr == pytest.approx(3e-4) and new.seed == 5
    assert new.out == "2024" and new.optim.epochs == 7 and isinstance(new.optim.epochs, int)
    assert new.model.input_size == (128, 96)


def test_config_mistakes_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict({"optim": {"learning_rate": 1}})
    with pytest.raises(ConfigError, match="schedule"):
        config_from_dict({"optim": {"schedule": "linear"}})
    with pytest.raises(ModelError, match="unknown head"):
        config_from_dict({"model": {"head": "yolo"}})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides(TrainConfig(), ["optim.nope=1"])
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(TrainConfig(), ["optim.epochs=2.5"])
    with pytest.raises(ConfigError, match="true or false"):
        apply_overrides(TrainConfig(), ["sync_bn=maybe"])


def test_lr_schedule_golden():
    o = OptimConfig(epochs=10, lr=1.0, warmup_epochs=2, min_lr_ratio=0.0)
    s = LRSchedule.from_config(o, world_size=1)
    assert s.lr(0.0) == pytest.approx(0.01)
    assert s.lr(1.0) == pytest.approx(0.505)
    assert s.lr(2.0) == pytest.approx(1.0)
    assert s.lr(6.0) == pytest.approx(0.5)  # halfway through the cosine
    assert s.lr(10.0) == pytest.approx(0.0, abs=1e-12)
    step = LRSchedule(1.0, 10, "step", 0.0, milestones=[3, 6], gamma=0.1)
    assert [step.lr(e) for e in (0, 2.9, 3, 6.5)] == pytest.approx([1, 1, 0.1, 0.01])
    linear = LRSchedule.from_config(OptimConfig(lr=1e-3, lr_scaling="linear",
                                                warmup_epochs=0), world_size=4)
    assert linear.lr(0.0) == pytest.approx(4e-3)

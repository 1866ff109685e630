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

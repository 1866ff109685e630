"""Full PoseModel with the heatmap and DSNT heads: inference contract, losses, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgepose.errors import ModelError
from edgepose.metadata import ModelMeta
from edgepose.models import build_model

from model_helpers import random_batch, tiny_meta


@pytest.mark.parametrize("head", ["heatmap", "dsnt"])
@pytest.mark.parametrize("backbone,stride", [("resnet18", 8), ("mobilenetv3_large_100", 16)])
def test_inference_contract(head, backbone, stride):
    model = build_model(tiny_meta(head, backbone, stride=stride))
    torch.nn.init.normal_(model.head.final.weight, std=0.3)  # non-trivial heatmaps
    out = model.predict_numpy(torch.randn(3, 3, 64, 64))
    coords, scores = out["coords"], out["scores"]
    assert coords.shape == (3, 17, 2) and scores.shape == (3, 17)
    assert np.isfinite(coords).all() and np.isfinite(scores).all()
    assert coords.min() >= -0.5 and coords.max() <= 63.5, "coords must lie inside the input"
    assert scores.min() >= 0 and scores.max() <= 1
    assert model.training, "predict_numpy() must restore the training flag"


@pytest.mark.parametrize("head", ["heatmap", "dsnt"])
def test_loss_backward_finite(head):
    model = build_model(tiny_meta(head, size=(64, 48)))
    batch = random_batch(2, size=(64, 48))
    batch["keypoints"][0, 3] = float("nan")  # invisible joints may carry garbage
    batch["visible"][0, 3] = 0
    out = model.forward_train(batch["image"], batch)
    assert out["heatmaps"].shape == (2, 17, 16, 12)
    loss, parts = model.loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss), loss
    assert all(isinstance(v, float) for v in parts.values()) and parts
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.head.final.weight.grad.abs().sum() > 0


def test_dsnt_loss_matches_hand_formula():
    model = build_model(tiny_meta("dsnt", sigma=1.0, js_weight=0.5))
    batch = random_batch(2)
    out = model.forward_train(batch["image"], batch)
    loss, parts = model.loss(out, batch)
    assert abs(loss.item() - (parts["euclidean"] + 0.5 * parts["js"])) < 1e-5
    # Euclidean part by hand from the normalised coordinates
    target = (2 * batch["keypoints"] + 1) / 64 - 1
    d = (out["coords_norm"] - target).norm(dim=-1)
    v = batch["visible"]
    assert abs(parts["euclidean"] - ((d * v).sum() / v.sum()).item()) < 1e-5


def test_heatmap_loss_is_zero_on_its_own_targets():
    model = build_model(tiny_meta("heatmap"))
    batch = random_batch(2)
    targets, _ = model.head.codec.encode(batch["keypoints"], batch["visible"])
    loss, _ = model.loss({"heatmaps": targets}, batch)
    assert loss.item() < 1e-12
    loss2, _ = model.loss({"heatmaps": torch.zeros_like(targets)}, batch)
    assert loss2.item() > 1e-4


def test_dsnt_coords_follow_the_heatmap():
    """A trained-like heatmap (target Gaussian) decodes back to its keypoint in input px."""
    from edgepose.models.dsnt import dsnt, make_gauss
    from edgepose.coords import norm_to_pixel_xy, pixel_to_norm_xy

    kp = torch.tensor([[[20.3, 41.7]]])
    g = make_gauss(pixel_to_norm_xy(kp, 64, 64), (16, 16), sigma=1.0)
    assert torch.allclose(norm_to_pixel_xy(dsnt(g), 64, 64), kp, atol=0.05)


def test_unknown_names_and_settings_raise_model_error():
    with pytest.raises(ModelError, match="unknown backbone"):
        build_model(ModelMeta(head="dsnt", backbone="not_a_net", input_size=(64, 64)))
    with pytest.raises(ModelError, match="unknown head"):
        ModelMeta(head="regression", backbone="resnet18", input_size=(64, 64))
    with pytest.raises(ModelError, match="sigmaa"):
        build_model(tiny_meta("heatmap", sigmaa=2.0))
    with pytest.raises(ModelError, match="multiple"):
        build_model(tiny_meta("dsnt", size=(60, 64)))

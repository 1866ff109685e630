"""Unlabelled joints (v = 0 -> visible 0) contribute nothing to any head's loss or gradient."""

from __future__ import annotations

import pytest
import torch
from model_helpers import random_batch, tiny_meta

from edgepose.models import build_model

HEADS = {
    "heatmap": None,
    "dsnt": None,
    "nerpe": {"feat_dim": 32, "hidden": [32, 32], "samples_per_cell": 4},
}


def build(head):
    from edgepose.metadata import ModelMeta

    torch.manual_seed(0)
    if head == "nerpe":  # NerPE has no upsampling neck (no width setting)
        meta = ModelMeta(head="nerpe", backbone="resnet18", input_size=(64, 64), stride=8,
                         head_cfg=HEADS["nerpe"])
    else:
        meta = tiny_meta(head)
    return build_model(meta).train()


def loss_and_grads(model, batch, seed=0):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # NerPE samples its training queries at random
    out = model.forward_train(batch["image"], batch)
    loss, _ = model.loss(out, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                           if p.grad is not None}


@pytest.mark.parametrize("head", sorted(HEADS))
def test_moving_an_unlabelled_joint_changes_nothing(head):
    model = build(head)
    batch = random_batch(3, seed=1)
    batch["visible"][:, 4] = 0.0  # right ear unlabelled for everyone (LSP has no ears)
    batch["visible"][1, 9] = 0.0  # and one person's left wrist
    loss_a, grads_a = loss_and_grads(model, batch)
    moved = dict(batch, keypoints=batch["keypoints"].clone())
    moved["keypoints"][:, 4] = torch.tensor([3.0, 60.0])
    moved["keypoints"][1, 9] = torch.tensor([50.0, 2.0])
    loss_b, grads_b = loss_and_grads(model, moved)
    assert torch.equal(loss_a, loss_b), f"{head}: loss changed ({loss_a} vs {loss_b})"
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.equal(grads_a[name], grads_b[name]), f"{head}: gradient of {name} changed"
    # and the sanity check that the test can fail: moving a *labelled* joint does change it
    labelled = dict(batch, keypoints=batch["keypoints"].clone())
    labelled["keypoints"][0, 0] += 7.0
    loss_c, _ = loss_and_grads(model, labelled)
    assert not torch.equal(loss_a, loss_c), f"{head}: a labelled joint must matter"


@pytest.mark.parametrize("head", sorted(HEADS))
def test_a_joint_unlabelled_everywhere_gets_no_gradient(head):
    """The output unit of a joint nobody labels receives exactly zero gradient."""
    model = build(head)
    batch = random_batch(2, seed=2)
    batch["visible"][:, 0] = 0.0  # nose: unlabelled in the whole batch
    batch["visible"][:, 1:] = 1.0
    _, grads = loss_and_grads(model, batch)
    last = [m for m in model.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
            and getattr(m, "out_channels", getattr(m, "out_features", 0)) == 17][-1]
    g = last.weight.grad
    assert g is not None
    assert torch.count_nonzero(g[0]) == 0, f"{head}: the nose's output unit got a gradient"
    assert torch.count_nonzero(g[1]) > 0, f"{head}: a labelled joint's unit must get one"

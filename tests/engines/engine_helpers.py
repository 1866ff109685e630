"""Tiny models of every head that exists, for the engine tests (imported by name: the
tests directories are not packages)."""

from __future__ import annotations


from edgepose.metadata import TRAINABLE_HEADS, ModelMeta
from meta_helpers import tiny_meta as _tiny_meta

INPUT_HW = (64, 48)  # non-square on purpose: catches H/W mix-ups
TINY_CFG = {
    "heatmap": {"width": 16},
    "dsnt": {"width": 16},
    "nerpe": {"feat_dim": 16, "hidden": [16, 16], "grid_rows": 4},
}
TINY_DECODER = {"nerpe": {"mode": "progressive", "coarse": 8, "r": 2, "overlap": 2, "steps": 1}}


HEADS = list(TRAINABLE_HEADS)


def tiny_meta(head: str, input_hw=INPUT_HW) -> ModelMeta:
    return _tiny_meta(head, "resnet18", input_hw, decoder=TINY_DECODER.get(head),
                      **TINY_CFG.get(head, {}))


def make_checkpoint(path, head: str, seed: int = 0, input_hw=INPUT_HW):
    import torch

    from edgepose.checkpoint import save_checkpoint
    from edgepose.models import build_model

    torch.manual_seed(seed)
    meta = tiny_meta(head, input_hw)
    model = build_model(meta).eval()
    save_checkpoint(path, model, meta)
    return model, meta

"""Helpers for the model tests (imported as a top-level module, like rt_helpers): tiny
metadata and batches; no files, no datasets."""

from __future__ import annotations

import torch

from meta_helpers import tiny_meta as _tiny_meta


def tiny_meta(head: str, backbone: str = "resnet18", size=(64, 64), stride: int = 8, **head_cfg):
    """A narrow neck (width 32) unless given, so tests stay fast."""
    head_cfg.setdefault("width", 32)
    return _tiny_meta(head, backbone, size, stride, **head_cfg)


def random_batch(batch: int, size=(64, 64), joints: int = 17, seed: int = 0) -> dict:
    """A collated batch as the dataset makes it: keypoints in input px, some invisible."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    kp = torch.rand(batch, joints, 2, generator=g) * torch.tensor([w - 1.0, h - 1.0])
    visible = (torch.rand(batch, joints, generator=g) > 0.25).float()
    image = torch.randn(batch, 3, h, w, generator=g)
    return {"image": image, "keypoints": kp, "visible": visible}

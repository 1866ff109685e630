"""Helpers of the calibration tests: a tiny exported pose model and small image sets.

(A plain module, not conftest.py, so test files can import it by name.)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from edgepose.metadata import ModelMeta
from meta_helpers import tiny_meta as _tiny_meta


class TinyHead(nn.Module):
    """DSNT-style decoder: 1x1 conv -> spatial softmax -> expectation (input pixels)."""

    def __init__(self, channels: int, joints: int, size: tuple[int, int], stride: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, joints, 1)
        h, w = size[0] // stride, size[1] // stride
        xs = (torch.arange(w, dtype=torch.float32) + 0.5) * stride - 0.5
        ys = (torch.arange(h, dtype=torch.float32) + 0.5) * stride - 0.5
        self.register_buffer("xs", xs.repeat(h))
        self.register_buffer("ys", ys.repeat_interleave(w))

    def forward(self, f):
        logits = self.conv(f).flatten(2)  # (B, K, h*w)
        p = logits.softmax(-1)
        coords = torch.stack([(p * self.xs).sum(-1), (p * self.ys).sum(-1)], -1)
        return coords, p.amax(-1)


class TinyPose(nn.Module):
    """Backbone (3 strided convs, stride 8) + TinyHead; forward -> (coords, scores)."""

    def __init__(self, meta: ModelMeta):
        super().__init__()
        c = 16
        self.backbone = nn.Sequential(
            nn.Conv2d(3, c, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(c, c, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, 2, 1), nn.ReLU(),
        )
        self.head = TinyHead(2 * c, meta.num_joints, meta.input_size, 8)

    def forward(self, x):
        return self.head(self.backbone(x))


def tiny_meta(size=(32, 32)) -> ModelMeta:
    return _tiny_meta("dsnt", "tiny-test", size)


def export_tiny(path: Path, seed: int = 0, size=(32, 32)) -> Path:
    """Export a randomly initialised TinyPose with the project's exporter."""
    from edgepose.engines.export import ExportOptions, export_model

    torch.manual_seed(seed)
    meta = tiny_meta(size)
    export_model(TinyPose(meta).eval(), meta, path, ExportOptions(), progress=False)
    return path


def write_images(folder: Path, n: int, seed: int = 0, size=(48, 40)) -> list[Path]:
    """``n`` random-blob PNG images (h, w = size) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (5, 5), 0)
        p = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths

"""Datasets and synthetic data.

    synthetic   generate_coco_dataset(), SynthConfig, DemoScene: COCO-format figures with
                exact sub-pixel keypoints (figures.py draws them, backgrounds.py the scenery)
    coco        CocoKeypoints: top-down COCO person-keypoint dataset (real or synthetic)
    mpii        MpiiKeypoints: MPII in the mmpose/HRNet JSON format, with PCKh head sizes
    transforms  AugConfig and the one-affine crop/augment/flip pipeline both datasets share
    datasets    build_dataset(): a DataConfig's train / val split (train and eval use it)

Names are imported lazily (``from edgepose.data import CocoKeypoints`` works) so that the
generator can be used without importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "generate_coco_dataset": "synthetic", "SynthConfig": "synthetic", "DemoScene": "synthetic",
    "CocoKeypoints": "coco", "MpiiKeypoints": "mpii", "AugConfig": "transforms",
    "TopDownDataset": "topdown",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"edgepose.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'edgepose.data' has no attribute {name!r}")

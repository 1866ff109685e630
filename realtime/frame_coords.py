"""Stage 5: the model's input-pixel keypoints -> frame pixels (each crop's inverse affine)."""

from __future__ import annotations

import numpy as np

from edgepose.coords import apply_affine, invert_affine
from edgepose.errors import EngineError


def to_frame(coords: np.ndarray, mats: list) -> np.ndarray:
    """(N, K, 2) input px + N image->crop matrices -> (N, K, 2) frame px (float64)."""
    if coords.shape[:1] != (len(mats),) or coords.shape[-1] != 2:
        raise EngineError(f"backend returned coords of shape {coords.shape} for a batch of "
                          f"{len(mats)}; expected (N, K, 2)")
    return np.stack([apply_affine(c, invert_affine(m)) for c, m in zip(coords, mats)])

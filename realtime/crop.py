"""Stage 3 of a frame's journey: person boxes -> one normalised model batch.

Every crop goes through :func:`edgepose.preprocess.preprocess`, the same function training,
evaluation and calibration use, so the live app cannot drift from them.
"""

from __future__ import annotations

import numpy as np

from edgepose.preprocess import preprocess


def crop_people(meta, image_bgr: np.ndarray, boxes, paddings) -> tuple[np.ndarray, list]:
    """Crop every (box xywh, padding) from ``image_bgr`` -> ((N, 3, H, W) float32 batch,
    N image->crop 2x3 matrices)."""
    inputs, mats = [], []
    for box, pad in zip(boxes, paddings):
        x, m = preprocess(image_bgr, box, meta, padding=pad)
        inputs.append(x)
        mats.append(m)
    return np.stack(inputs).astype(np.float32, copy=False), mats

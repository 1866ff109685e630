"""The one preprocessing path: image (BGR uint8, as OpenCV reads it) -> model input tensor.

Training data, calibration streams, the realtime app and every backend call this, so the
tensor a model sees for a given image and box is identical everywhere.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from edgepose.coords import CROP_PADDING, box_to_center_scale, crop_affine
from edgepose.errors import DataError
from edgepose.metadata import ModelMeta


def crop(image_bgr: np.ndarray, affine: np.ndarray, output_wh: tuple[int, int]) -> np.ndarray:
    """Warp ``image_bgr`` (H, W, 3 uint8) with a 2x3 image->crop matrix. Bilinear, black border."""
    return cv2.warpAffine(
        image_bgr, affine, (int(output_wh[0]), int(output_wh[1])),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )


@functools.lru_cache(maxsize=16)
def _lut(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 256) float32 table: lut[c, v] = (v / 255 - mean[c]) / std[c]."""
    v = np.arange(256, dtype=np.float32)[None, :] * np.float32(1.0 / 255.0)
    lut = (v - np.asarray(mean, np.float32)[:, None]) / np.asarray(std, np.float32)[:, None]
    lut.setflags(write=False)
    return lut


def normalize(crop_bgr: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """(H, W, 3) uint8 BGR crop -> (3, H, W) float32, colour order and mean/std from ``meta``.

    A per-channel 256-entry lookup table gives the same values as the float arithmetic
    (to ~5e-7) about 4x faster, which every frame, training sample and calibration batch pays.
    """
    if crop_bgr.ndim != 3 or crop_bgr.shape[2] != 3:
        raise DataError(f"expected an (H, W, 3) colour image, got shape {crop_bgr.shape}")
    if crop_bgr.dtype != np.uint8:
        raise DataError(f"expected a uint8 image, got dtype {crop_bgr.dtype}")
    lut = _lut(tuple(meta.mean), tuple(meta.std))
    order = (2, 1, 0) if meta.color.upper() == "RGB" else (0, 1, 2)
    out = np.empty((3,) + crop_bgr.shape[:2], dtype=np.float32)
    for c, src in enumerate(order):
        np.take(lut[c], crop_bgr[:, :, src], out=out[c])
    return out


def box_affine(box_xywh, meta: ModelMeta, padding: float = CROP_PADDING,
               rotation_deg: float = 0.0):
    """2x3 image->crop matrix for a person box, at the model's input size and aspect."""
    h, w = meta.input_size
    center, size = box_to_center_scale(box_xywh, w / h, padding)
    return crop_affine(center, size, (w, h), rotation_deg)


def preprocess(
    image_bgr: np.ndarray, box_xywh, meta: ModelMeta, padding: float = CROP_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Image + person box -> ((3, H, W) float32 input, 2x3 image->crop matrix)."""
    if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        shape = None if image_bgr is None else image_bgr.shape
        raise DataError(f"expected an (H, W, 3) BGR uint8 image, got shape {shape}")
    m = box_affine(box_xywh, meta, padding)
    h, w = meta.input_size
    return normalize(crop(image_bgr, m, (w, h)), meta), m


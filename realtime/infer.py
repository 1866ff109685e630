"""One frame through the model: person crops -> ONE backend call -> frame-pixel keypoints.

Preprocessing is ``edgepose.preprocess`` (the same path training and evaluation use); the
inverse crop affine (``edgepose.coords``) maps the backend's input-pixel ``coords`` back
to frame pixels. Several people are batched into one call, chunked to the backend's
maximum batch when its ONNX/engine input has a static batch dimension.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgepose.coords import apply_affine, invert_affine
from edgepose.errors import EngineError
from edgepose.preprocess import box_affine, crop, normalize, pad_batch


def max_batch(backend) -> int | None:
    """The backend's static batch size, or None when the batch dimension is dynamic."""
    shape = getattr(backend, "input_shape", None)
    if not shape:
        return None
    b = shape[0]
    return int(b) if isinstance(b, (int, np.integer)) and int(b) > 0 else None


def run_batched(backend, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, H, W) float32 -> coords (N, K, 2) input px, scores (N, K), in as few calls as
    the backend allows (a static batch B gets chunks of B, the last one padded with
    :func:`edgepose.preprocess.pad_batch`)."""
    n = batch.shape[0]
    limit = max_batch(backend)
    if limit is None or limit == n:
        out = backend(batch)
        return np.asarray(out["coords"]), np.asarray(out["scores"])
    coords, scores = [], []
    for i in range(0, n, limit):
        chunk = batch[i:i + limit]
        m = chunk.shape[0]
        out = backend(np.ascontiguousarray(pad_batch(chunk, limit)))
        coords.append(np.asarray(out["coords"])[:m])
        scores.append(np.asarray(out["scores"])[:m])
    return np.concatenate(coords), np.concatenate(scores)


@dataclass
class PoseResult:
    """Keypoints of the N people in one frame: ``coords`` (N, K, 2) frame px (raw, before
    smoothing), ``scores`` (N, K); stage times in perf_counter seconds."""

    coords: np.ndarray
    scores: np.ndarray
    t_pre: tuple[float, float]
    t_inf: tuple[float, float]


def prepare(meta, image_bgr: np.ndarray, boxes, paddings) -> tuple[np.ndarray, list]:
    """Crop every (box xywh, padding) from ``image_bgr`` -> ((N, 3, H, W) float32 batch,
    N image->crop 2x3 matrices)."""
    h, w = meta.input_size
    mats, inputs = [], []
    for box, pad in zip(boxes, paddings):
        m = box_affine(box, meta, padding=pad)
        mats.append(m)
        inputs.append(normalize(crop(image_bgr, m, (w, h)), meta))
    return np.stack(inputs).astype(np.float32, copy=False), mats


def infer(backend, batch: np.ndarray, mats) -> tuple[np.ndarray, np.ndarray]:
    """Run the batch (chunked to the backend's batch size) and map ``coords`` back through
    each crop's inverse affine -> (N, K, 2) frame px (float64), (N, K) scores."""
    coords, scores = run_batched(backend, batch)
    if coords.shape[:1] != (len(mats),) or coords.shape[-1] != 2:
        raise EngineError(
            f"backend returned coords of shape {coords.shape} for a batch of {len(mats)}; "
            "expected (N, K, 2)"
        )
    frame_xy = np.stack([apply_affine(c, invert_affine(m)) for c, m in zip(coords, mats)])
    return frame_xy, scores.astype(np.float64)


def estimate(backend, meta, image_bgr: np.ndarray, boxes, paddings) -> PoseResult:
    """:func:`prepare` then :func:`infer`, timed: one frame, every person in one call."""
    t0 = time.perf_counter()
    batch, mats = prepare(meta, image_bgr, boxes, paddings)
    t1 = time.perf_counter()
    coords, scores = infer(backend, batch, mats)
    t2 = time.perf_counter()
    return PoseResult(coords, scores, (t0, t1), (t1, t2))

"""Stage 4 of a frame's journey: every person's crop in ONE backend call.

Several people are batched into one call, chunked to the backend's maximum batch when its
ONNX/engine input has a static batch dimension. Cropping is :mod:`edgepose.realtime.crop`,
the way back to frame pixels :mod:`edgepose.realtime.frame_coords`.
"""

from __future__ import annotations

import numpy as np

from edgepose.preprocess import pad_batch


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


def infer(backend, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stage 4: the batch through the model (chunked to its batch size) -> coords (N, K, 2)
    in input pixels, scores (N, K) float64."""
    coords, scores = run_batched(backend, batch)
    return np.asarray(coords), np.asarray(scores, dtype=np.float64)

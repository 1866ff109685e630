"""Person-detector decoding (NanoDet-style), in numpy: grid cells -> boxes -> NMS.

NanoDet predicts, for every cell of each output level (stride 8, 16, 32 at 416 x 416),
per-class scores (already sigmoid) and, for each box side (left, top, right, bottom), a
distribution over ``reg_max + 1`` bins. A side's length is the distribution's expected
bin (softmax, then sum of k * p_k) times the stride, measured from the cell centre at
``((i + 0.5) * stride, (j + 0.5) * stride)`` in input pixels. (Taking the arg-max bin
instead of the expectation loses people: the expectation is the trained estimate.)

Pure functions of arrays; the ONNX graph and its metadata live in
:mod:`edgepose.engines.detector`.
"""

from __future__ import annotations

import numpy as np


def cell_centres(input_hw: tuple[int, int], stride: int) -> np.ndarray:
    """(H/s * W/s, 2) [x, y] centres of a level's cells, row-major (y outer), input px
    with pixel *edges* at 0 (NanoDet's convention, as the boxes it regresses)."""
    h, w = (int(np.ceil(v / stride)) for v in input_hw)
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([(xs.reshape(-1) + 0.5) * stride, (ys.reshape(-1) + 0.5) * stride], 1)


def expected_distances(dists: np.ndarray, reg_max: int) -> np.ndarray:
    """(N, 4 * (reg_max + 1)) logits -> (N, 4) expected bins (softmax over each side)."""
    d = np.asarray(dists, np.float64).reshape(-1, 4, reg_max + 1)
    d = np.exp(d - d.max(-1, keepdims=True))
    d /= d.sum(-1, keepdims=True)
    return (d * np.arange(reg_max + 1)).sum(-1)


def decode_level(scores: np.ndarray, dists: np.ndarray, input_hw, stride: int, reg_max: int,
                 cls: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One level: (N, C) scores + (N, 4(reg_max+1)) logits -> boxes (M, 4) [x1, y1, x2, y2]
    input px and their scores (M,), for class ``cls`` above ``threshold``."""
    s = np.asarray(scores, np.float64)[:, cls]
    keep = np.nonzero(s >= threshold)[0]
    if keep.size == 0:
        return np.zeros((0, 4)), np.zeros(0)
    centres = cell_centres(input_hw, stride)[keep]
    ltrb = expected_distances(np.asarray(dists)[keep], reg_max) * stride
    boxes = np.concatenate([centres - ltrb[:, :2], centres + ltrb[:, 2:]], axis=1)
    return boxes, s[keep]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) [x1, y1, x2, y2] -> (N, M) intersection over union."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    boxes = np.asarray(boxes, np.float64)
    while order.size:
        i = order[0]
        keep.append(int(i))
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou_matrix(boxes[i:i + 1], boxes[rest])[0] <= iou]
    return np.asarray(keep, dtype=np.int64)

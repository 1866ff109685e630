"""Box geometry of the tracker: xywh boxes in frame pixels (x, y = top-left pixel *edge*),
how they overlap, move and may shrink (:mod:`edgepose.realtime.tracking` decides with them)."""

from __future__ import annotations

import numpy as np


def limit_shrink(prev: np.ndarray, box: np.ndarray, factor: float,
                 frame_wh: tuple[int, int]) -> np.ndarray:
    """``box`` (xywh) kept at least ``factor`` x ``prev``'s width and height, same centre,
    clipped to the frame."""
    size = np.maximum(box[2:], prev[2:] * factor)
    centre = box[:2] + box[2:] / 2.0
    lo = np.clip(centre - size / 2.0, 0.0, frame_wh)
    hi = np.clip(centre + size / 2.0, 0.0, frame_wh)
    return np.concatenate([lo, hi - lo])


def moved(box: np.ndarray, step: np.ndarray, frame_wh: tuple[int, int]) -> np.ndarray:
    """``box`` (xywh) shifted by ``step`` (px), kept inside the frame (its size kept where
    it fits)."""
    w, h = frame_wh
    size = np.minimum(box[2:], [w, h])
    lo = np.clip(box[:2] + step, 0.0, np.array([w, h]) - size)
    return np.concatenate([lo, size])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xywh boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two xywh boxes over the smaller one's area (1 = one inside the other)."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    small = min(a[2] * a[3], b[2] * b[3])
    return float(iw * ih / small) if small > 0 else 0.0


def near(a: np.ndarray, b: np.ndarray) -> bool:
    """Two xywh boxes of about one size (heights within 2x) whose centres are at most half
    the larger box's height apart."""
    ha, hb = max(a[3], 1e-6), max(b[3], 1e-6)
    if max(ha, hb) > 2 * min(ha, hb):
        return False
    d = np.hypot(a[0] + a[2] / 2 - b[0] - b[2] / 2, a[1] + a[3] / 2 - b[1] - b[3] / 2)
    return bool(d <= 0.5 * max(ha, hb))


def same_box(a: np.ndarray, b: np.ndarray) -> bool:
    """Two boxes on one person: IoU >= 0.6, or one almost wholly (0.85) inside the other
    and at least half its area (a small person in front of a big one is another person)."""
    areas = sorted((float(a[2] * a[3]), float(b[2] * b[3])))
    return iou(a, b) >= 0.6 or (overlap_of_smaller(a, b) >= 0.85 and areas[0] >= 0.5 * areas[1])

"""NanoDet-style decoding on hand-made tensors: exact boxes, NMS merges duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.engines.detection import (
    cell_centres, decode_level, expected_distances, iou_matrix, nms,
)

REG = 10  # 11 bins per side


def one_hot_logits(bins: list[int], sharp: float = 60.0) -> np.ndarray:
    """Logits whose softmax puts (numerically) all mass on ``bins`` (l, t, r, b)."""
    d = np.zeros((4, REG + 1))
    for side, k in enumerate(bins):
        d[side, k] = sharp
    return d.reshape(-1)


def test_one_box_of_known_bins_decodes_exactly():
    hw, stride = (416, 416), 32  # 13 x 13 cells
    n = 13 * 13
    scores = np.zeros((n, 2))
    dists = np.zeros((n, 4 * (REG + 1)))
    cell = 2 * 13 + 5  # row 2, column 5: centre (5.5 * 32, 2.5 * 32) = (176, 80)
    scores[cell, 0] = 0.9
    scores[cell, 1] = 0.99  # another class: ignored
    dists[cell] = one_hot_logits([1, 2, 3, 4])
    boxes, s = decode_level(scores, dists, hw, stride, REG, cls=0, threshold=0.35)
    assert s.tolist() == [0.9]
    np.testing.assert_allclose(boxes[0], [176 - 32, 80 - 64, 176 + 96, 80 + 128], atol=1e-6)


def test_expectation_not_argmax():
    d = np.full((1, 4, REG + 1), -50.0)
    d[0, :, 2] = d[0, :, 3] = 5.0  # two equal bins: expectation 2.5, argmax would say 2
    np.testing.assert_allclose(expected_distances(d.reshape(1, -1), REG), [[2.5] * 4], atol=1e-3)


def test_cell_centres_are_row_major():
    c = cell_centres((16, 24), 8)
    assert c.shape == (2 * 3, 2)
    np.testing.assert_array_equal(c[:4], [[4, 4], [12, 4], [20, 4], [4, 12]])


def test_nms_merges_duplicates_and_keeps_separate_people():
    boxes = np.array([[10, 10, 110, 210], [12, 8, 112, 205], [300, 20, 380, 200],
                      [14, 12, 108, 212]], dtype=float)
    scores = np.array([0.8, 0.9, 0.7, 0.5])
    keep = nms(boxes, scores, iou=0.6)
    assert keep.tolist() == [1, 2], "the best of the three overlapping boxes, and the other person"
    assert iou_matrix(boxes[:1], boxes[:1])[0, 0] == pytest.approx(1.0)
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.6).tolist() == []

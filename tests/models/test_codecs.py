"""Gaussian heatmap codec: encode -> decode round trip and the edge cases."""

from __future__ import annotations

import math

import torch

from edgepose.models.codecs import GaussianHeatmapCodec, decode_argmax_shift

STRIDE = 4  # 64 x 64 input, 16 x 16 heatmap


def _codec(**kw) -> GaussianHeatmapCodec:
    return GaussianHeatmapCodec((64, 64), (16, 16), **kw)


def _random_keypoints(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # At least 2 heatmap px from the border so the shift is never switched off there.
    return torch.rand(n, 17, 2, generator=g) * 48 + 8


def test_round_trip_quarter_pixel_bound():
    """Argmax is within 0.5 heatmap px of a sub-pixel peak; stepping 0.25 px towards the
    higher neighbour leaves at most 0.25 px per axis (measured: max 0.2500, mean 0.125 px,
    i.e. <= 1 input px at stride 4), for sigma 1 and 2."""
    kp = _random_keypoints(64)
    vis = torch.ones(64, 17)
    for sigma in (1.0, 2.0):
        codec = _codec(sigma=sigma)
        targets, weights = codec.encode(kp, vis)
        assert targets.shape == (64, 17, 16, 16) and weights.shape == (64, 17)
        decoded, scores = codec.decode(targets)
        err = (decoded - kp).abs() / STRIDE  # heatmap px, per axis
        assert err.max() <= 0.25 + 1e-4, f"sigma {sigma}: max error {err.max():.4f} hm px"
        assert 0.09 < err.mean() < 0.16, f"sigma {sigma}: mean error {err.mean():.4f}"
        # plain argmax is worse: up to 0.5 px
        plain, _ = GaussianHeatmapCodec((64, 64), (16, 16), sigma=sigma, shift=0.0).decode(targets)
        plain_err = (plain - kp).abs() / STRIDE
        assert plain_err.max() <= 0.5 + 1e-4 and plain_err.mean() > err.mean()
        # scores: the sampled peak of a unit Gaussian, >= exp(-(0.5^2 + 0.5^2) / (2 s^2))
        assert scores.min() >= math.exp(-0.5 / (2 * sigma**2)) - 1e-5
        assert scores.max() <= 1.0


def test_keypoint_on_a_pixel_centre_is_exact():
    codec = _codec(sigma=2.0)
    # heatmap pixel (5, 9) has its centre at input pixel (5.5 * 4 - 0.5, 9.5 * 4 - 0.5)
    kp = torch.tensor([[[21.5, 37.5]]])
    targets, _ = codec.encode(kp, torch.ones(1, 1))
    assert targets[0, 0, 9, 5] == 1.0 and targets[0, 0].argmax() == 9 * 16 + 5
    coords, scores = codec.decode(targets)
    assert torch.allclose(coords, kp), coords
    assert scores.item() == 1.0


def test_weights_zero_for_invisible_and_outside():
    codec = _codec()
    kp = torch.tensor([[[30.0, 30.0], [30.0, 30.0], [-10.0, 30.0], [30.0, 70.0], [63.4, 0.0]]])
    vis = torch.tensor([[1.0, 0.0, 1.0, 1.0, 1.0]])
    _, weights = codec.encode(kp, vis)
    assert weights.tolist() == [[1.0, 0.0, 0.0, 0.0, 1.0]]


def test_decode_shift_direction_and_border():
    hm = torch.zeros(1, 2, 5, 6)
    hm[0, 0, 2, 3] = 1.0
    hm[0, 0, 2, 4] = 0.5  # right neighbour higher -> +0.25 in x
    hm[0, 0, 1, 3] = 0.5  # upper neighbour higher -> -0.25 in y
    hm[0, 1, 0, 0] = 1.0  # corner: no neighbour pair, no shift
    hm[0, 1, 0, 1] = 0.9
    xy, peak = decode_argmax_shift(hm)
    assert xy[0, 0].tolist() == [3.25, 1.75], xy
    assert xy[0, 1].tolist() == [0.0, 0.0], xy
    assert peak.tolist() == [[1.0, 1.0]]


def test_scores_clamped():
    codec = _codec()
    hm = torch.full((1, 2, 16, 16), -3.0)
    hm[0, 0, 4, 4] = 7.0
    _, scores = codec.decode(hm)
    assert scores.tolist() == [[1.0, 0.0]]

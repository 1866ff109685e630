"""dsnt.py functions against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from edgepose.models.dsnt import (
    dsnt,
    euclidean_losses,
    flat_softmax,
    js_divergence,
    js_reg_losses,
    make_gauss,
    masked_mean,
    normalised_grid,
    window_mass,
)


def test_normalised_grid_is_pixel_centres():
    assert torch.allclose(normalised_grid(3), torch.tensor([-2 / 3, 0.0, 2 / 3]))
    assert torch.allclose(normalised_grid(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))


def test_dsnt_golden_coordinates_and_gradients():
    # 3x3 map, half the mass at (row 0, col 0), half at (row 1, col 2).
    # grid = [-2/3, 0, 2/3]: x = 0.5 * -2/3 + 0.5 * 2/3 = 0, y = 0.5 * -2/3 + 0.5 * 0 = -1/3.
    p = torch.zeros(1, 1, 3, 3)
    p[0, 0, 0, 0] = 0.5
    p[0, 0, 1, 2] = 0.5
    p.requires_grad_(True)
    xy = dsnt(p)
    assert xy.shape == (1, 1, 2)
    assert torch.allclose(xy[0, 0], torch.tensor([0.0, -1 / 3]), atol=1e-6), xy
    # d x / d p_ij = grid[j], d y / d p_ij = grid[i]  =>  d (x + 2y) / d p_ij = g[j] + 2 g[i].
    (xy[..., 0] + 2 * xy[..., 1]).sum().backward()
    g = torch.tensor([-2 / 3, 0.0, 2 / 3])
    expected = g[None, :] + 2 * g[:, None]
    assert torch.allclose(p.grad[0, 0], expected, atol=1e-6), p.grad


def test_dsnt_non_square_one_hot():
    # H = 2, W = 4; all mass on row 1, column 3 -> x = 0.75, y = 0.5.
    p = torch.zeros(2, 1, 2, 4)
    p[:, 0, 1, 3] = 1.0
    assert torch.allclose(dsnt(p), torch.tensor([0.75, 0.5]).expand(2, 1, 2))


def test_dsnt_through_softmax_gradient():
    # d x / d logit_ij = p_ij (g[j] - x) for x = sum p g (softmax Jacobian), by hand.
    logits = torch.tensor([[[[0.0, 1.0], [2.0, -1.0]]]], requires_grad=True)
    e = torch.exp(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    p = (e / e.sum()).reshape(2, 2)
    g = torch.tensor([-0.5, 0.5])
    x = (p * g[None, :]).sum()
    probs = flat_softmax(logits)
    assert torch.allclose(probs.sum(dim=(-2, -1)), torch.ones(1, 1))
    out = dsnt(probs)
    assert abs(out[0, 0, 0].item() - x.item()) < 1e-6
    out[0, 0, 0].backward()
    expected = p * (g[None, :] - x)
    assert torch.allclose(logits.grad[0, 0], expected, atol=1e-6), logits.grad


def test_euclidean_losses_golden_and_finite_gradient_at_zero():
    a = torch.tensor([[[0.3, -0.1], [0.0, 0.0]]], requires_grad=True)
    t = torch.tensor([[[0.0, 0.3], [0.0, 0.0]]])
    d = euclidean_losses(a, t)
    assert torch.allclose(d, torch.tensor([[0.5, 0.0]])), d  # 0.3-0.4-0.5 triangle
    d.sum().backward()
    assert torch.isfinite(a.grad).all(), a.grad
    assert torch.allclose(a.grad[0, 0], torch.tensor([0.6, -0.8]), atol=1e-6)


def test_make_gauss_sums_to_one_and_is_centred():
    mu = torch.tensor([[[0.0, 0.0], [0.125, -0.25]]])
    gauss = make_gauss(mu, (16, 16), sigma=1.0)
    assert gauss.shape == (1, 2, 16, 16)
    assert torch.allclose(gauss.sum(dim=(-2, -1)), torch.ones(1, 2))
    assert torch.allclose(dsnt(gauss), mu, atol=1e-4), dsnt(gauss)
    # sigma is in heatmap pixels: at mu = pixel 8's centre (0.0625 normalised), the ratio
    # of neighbouring pixels 1 px apart is exp(-1/2).
    g = make_gauss(torch.tensor([[[1 / 16, 1 / 16]]]), (16, 16), sigma=1.0)[0, 0]
    assert abs((g[8, 9] / g[8, 8]).item() - math.exp(-0.5)) < 1e-5


def test_make_gauss_far_outside_is_zero_not_nan():
    g = make_gauss(torch.tensor([[[50.0, 50.0]]]), (8, 8), sigma=1.0)
    assert torch.isfinite(g).all() and g.sum() == 0


def test_js_reg_zero_at_target_and_positive_elsewhere():
    mu = torch.tensor([[[0.1, -0.2], [0.5, 0.4]]])
    target = make_gauss(mu, (12, 16), sigma=1.5)
    zero = js_reg_losses(target, mu, 1.5)
    assert zero.abs().max() < 1e-6, zero
    other = make_gauss(mu + 0.3, (12, 16), sigma=1.5)
    pos = js_reg_losses(other, mu, 1.5)
    assert (pos > 1e-3).all() and (pos <= math.log(2) + 1e-6).all(), pos


def test_js_divergence_of_disjoint_maps_is_ln2():
    p = torch.zeros(1, 1, 2, 2)
    q = torch.zeros(1, 1, 2, 2)
    p[..., 0, 0] = 1
    q[..., 1, 1] = 1
    assert abs(js_divergence(p, q).item() - math.log(2)) < 1e-6


def test_masked_mean_ignores_nan_in_masked_joints():
    losses = torch.tensor([[1.0, float("nan"), 3.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert masked_mean(losses, mask).item() == pytest.approx(2.0)
    assert masked_mean(losses, torch.zeros_like(mask)).item() == 0.0


def test_window_mass_uniform_and_one_hot():
    uniform = torch.full((1, 1, 4, 4), 1 / 16)
    assert abs(window_mass(uniform, 3).item() - 9 / 16) < 1e-6
    one_hot = torch.zeros(1, 1, 5, 5)
    one_hot[..., 0, 4] = 1.0  # at the border: zero padding must not lose it
    assert abs(window_mass(one_hot, 3).item() - 1.0) < 1e-6
    # A heatmap shaped like the training target (sigma 1) keeps >~ 0.9 in a 5x5 box.
    g = make_gauss(torch.tensor([[[0.03, -0.02]]]), (16, 16), sigma=1.0)
    assert window_mass(g, 5).item() > 0.9

"""The coordinate converters of edgepose/coords.py, as the heads use them."""

from __future__ import annotations

import numpy as np
import torch

from edgepose import coords


def test_pixel_norm_known_values():
    # W = 4: pixel edges -0.5 and 3.5 are -1 and +1; centres at -0.75 .. 0.75.
    x = torch.tensor([-0.5, 0.0, 1.0, 3.0, 3.5])
    u = coords.pixel_to_norm(x, 4)
    assert torch.allclose(u, torch.tensor([-1.0, -0.75, -0.25, 0.75, 1.0])), u


def test_pixel_norm_xy_round_trip_torch_and_numpy():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(3, 5, 2, generator=g) * torch.tensor([96.0, 64.0]) - 0.5
    uv = coords.pixel_to_norm_xy(xy, 96, 64)
    assert uv.abs().max() <= 1.0 + 1e-6, "points inside the image must be inside [-1, 1]"
    back = coords.norm_to_pixel_xy(uv, 96, 64)
    assert torch.allclose(back, xy, atol=1e-4), (back - xy).abs().max()
    xy_np = xy.numpy().astype(np.float64)
    back_np = coords.norm_to_pixel_xy(coords.pixel_to_norm_xy(xy_np, 96, 64), 96, 64)
    assert np.allclose(back_np, xy_np, atol=1e-9)
    # x is scaled by the width, y by the height
    assert torch.allclose(uv[..., 0], (2 * xy[..., 0] + 1) / 96 - 1)
    assert torch.allclose(uv[..., 1], (2 * xy[..., 1] + 1) / 64 - 1)


def test_heatmap_input_round_trip_and_shared_normalised_space():
    g = torch.Generator().manual_seed(2)
    hm = torch.rand(4, 3, 2, generator=g) * torch.tensor([16.0, 8.0])
    inp = coords.heatmap_to_input(hm, 4.0, 8.0)
    assert torch.allclose(coords.input_to_heatmap(inp, 4.0, 8.0), hm, atol=1e-5)
    # A 16x8 heatmap over a 64x64 input: the same normalised coordinates in both.
    u_hm = coords.pixel_to_norm_xy(hm, 16, 8)
    u_in = coords.pixel_to_norm_xy(inp, 64, 64)
    assert torch.allclose(u_hm, u_in, atol=1e-5), (u_hm - u_in).abs().max()
    # Heatmap pixel 0's centre is the centre of the first 4 input pixels: 1.5.
    assert coords.heatmap_to_input(torch.tensor([[0.0, 0.0]]), 4.0, 4.0).tolist() == [[1.5, 1.5]]

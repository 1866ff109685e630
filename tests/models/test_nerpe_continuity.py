"""The local-ensemble heatmap is continuous across cell borders; nearest-cell lookup is not.

Method: sample a line through the whole crop with step ``d`` (crossing every cell border
and every cell-centre line, where the ensemble's neighbour set changes). A continuous,
piecewise-smooth f changes between neighbouring samples by at most L * d, L = its largest
slope. We estimate L from the same line sampled 100x coarser and allow a factor 4 for
slopes the coarse sampling misses: bound = 4 * L_coarse * d. A jump of size J at a border
inflates L_coarse only to ~J / (100 d), giving a bound of ~J / 25 < J, so a real
discontinuity cannot hide under the bound.
"""

from __future__ import annotations

import pytest
import torch

from edgepose.models.nerpe import NerPEHead

D = 1e-4  # sampling step, normalised units (= 1/3200 of the crop width)


def line_values(head, grid, axis: int, at: float, ensemble: bool) -> torch.Tensor:
    t = torch.arange(-1 + D / 2, 1.0, D)
    other = torch.full_like(t, at)
    q = torch.stack([t, other] if axis == 0 else [other, t], dim=-1)[None]
    with torch.no_grad():
        return head.confidences_from_grid(grid, q, ensemble=ensemble)[0]  # (N, K)


def jump_and_bound(f: torch.Tensor) -> tuple[torch.Tensor, float]:
    jumps = (f[1:] - f[:-1]).abs().amax(-1)  # (N-1,) worst joint per step
    coarse = f[::100]
    slope = ((coarse[1:] - coarse[:-1]).abs().amax() / (100 * D)).item()
    return jumps, 4.0 * slope * D


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("input_size", [(64, 64), (256, 192)])
@pytest.mark.parametrize("axis,at", [(0, 0.13), (1, -0.61), (0, 0.25)])
def test_local_ensemble_is_continuous_and_nearest_cell_jumps(seed, input_size, axis, at):
    torch.manual_seed(seed)
    head = NerPEHead(8, 32, input_size, 17, feat_dim=16, hidden=(16, 16, 8)).eval()
    gh, gw = head.grid_hw
    grid = torch.randn(1, 16, gh, gw)

    jumps, bound = jump_and_bound(line_values(head, grid, axis, at, ensemble=True))
    assert jumps.max() <= bound, (
        f"ensemble heatmap jumps {jumps.max():.3g} > bound {bound:.3g} at step {D}")

    jumps_nn, bound_nn = jump_and_bound(line_values(head, grid, axis, at, ensemble=False))
    assert jumps_nn.max() > bound_nn, "nearest-cell lookup should jump at cell borders"
    # ... and it jumps exactly at the borders: between samples straddling -1 + 2j / cells
    cells = gw if axis == 0 else gh
    big = torch.nonzero(jumps_nn > bound_nn).flatten()
    t_mid = -1 + D * (big.float() + 1.0)  # position between sample i and i+1
    border = -1 + 2 * torch.round((t_mid + 1) * cells / 2) / cells
    assert (t_mid - border).abs().max() < D, "nearest-cell jumps must sit on cell borders"
    assert len(torch.unique(torch.round((t_mid + 1) * cells / 2))) >= cells - 2


def test_blend_weights_at_a_cell_centre_drop_the_far_neighbours():
    torch.manual_seed(0)
    from edgepose.models.nerpe_decoding import query_neighbours

    head = NerPEHead(8, 8, (64, 64), 17, feat_dim=16, hidden=(16, 16, 8)).eval()
    grid = torch.randn(1, 16, 8, 8)
    centre = torch.tensor([[[-1 + 7 / 8, -1 + 3 / 8]]])  # centre of cell (row 1, col 3)
    preds, w = query_neighbours(grid, centre, head.mlp, ensemble=True)
    own = preds[0, :, 0][w[0, :, 0] > 0.999]
    assert len(own) == 1, f"weights at a centre {w[0, :, 0].tolist()} should be one-hot"
    alone, _ = query_neighbours(grid, centre, head.mlp, ensemble=False)
    torch.testing.assert_close(own[0], alone[0, 0, 0])

"""NerPE decoding geometry: local-ensemble queries, query sampling, dense and progressive
search, and compute accounting. Pure functions; the head in ``nerpe.py`` wires them up.

Geometry (all in the normalised space of ``edgepose/coords.py``: crop edges at -1 and +1,
x by width and y by height). The feature grid has ``gh x gw`` cells; a cell is ``2/gw``
wide, so a *half cell* is ``hx = 1/gw`` (``hy = 1/gh``)::

      cell index         0           1                gw-1
                   |-----------|-----------|  ...  |-----------|
      x           -1    -1+hx  -1+2hx           1-2hx   1-hx    +1
                          ^ centre of cell 0

Local ensemble (LIIF-style): for a query c the four shifted points c + (+-hx, +-hy) fall
into the 2x2 cells whose centres surround c (clamped to the grid at the border). For each
such cell n the MLP sees its feature z_n and the offset ``o_n = (c - centre_n) / (hx, hy)``
in half-cell units, so |o| <= 1 inside the cell and |o| <= 2 for the ensemble neighbours
(the clamped border cells too). Prediction n is weighted by the area |o_x o_y| of the
*diagonally opposite* neighbour, normalised to sum 1. As c crosses a cell centre line the
neighbour that leaves the ensemble has weight 0 at that instant, so the blended heatmap is
continuous everywhere (tested in ``tests/models/test_nerpe_continuity.py``).

Export notes: cell lookup is ``floor`` + ``clamp`` in float, cast to int64, then one
``gather`` on the flattened (B, cells, C) grid - static shapes, opset-17 ops only
(Floor, Clip, Cast, GatherElements/Gather). The first MLP layer is linear in
concat(z, o), so it is split into ``W_z z + W_o o`` and ``W_z z`` is computed once per
*cell* before the gather (identical maths, far fewer MACs: see :func:`decoder_cost`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from edgepose.errors import ModelError

# Order of the four ensemble shifts (sx, sy); index i's diagonal opposite is 3 - i.
ENSEMBLE_SHIFTS = ((-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0))


# ----------------------------------------------------------------------------- the MLP


class QueryMLP(nn.Module):
    """MLP (z, o) -> K confidences, with its first layer split into ``z_proj`` + ``o_proj``.

    ``hidden`` e.g. (256, 256, 128, 128, 128), ReLU between layers, linear output.
    ``pos_freqs`` L > 0 adds sin/cos(2^l pi o) for l < L to the offset (pos_dim = 2 + 4L).
    """

    def __init__(self, feat_dim: int, hidden: tuple[int, ...], num_joints: int,
                 pos_freqs: int = 0):
        super().__init__()
        if not hidden:
            raise ModelError("nerpe head_cfg 'hidden' must list at least one layer width")
        self.pos_freqs = int(pos_freqs)
        self.pos_dim = 2 + 4 * self.pos_freqs
        self.z_proj = nn.Linear(feat_dim, hidden[0])
        self.o_proj = nn.Linear(self.pos_dim, hidden[0], bias=False)
        layers: list[nn.Module] = []
        dims = list(hidden) + [num_joints]
        for i in range(len(hidden)):
            layers += [nn.ReLU(inplace=False), nn.Linear(dims[i], dims[i + 1])]
        self.rest = nn.Sequential(*layers)

    def encode_offset(self, o: torch.Tensor) -> torch.Tensor:
        """(..., 2) offsets in half cells -> (..., pos_dim)."""
        if self.pos_freqs == 0:
            return o
        parts = [o]
        for level in range(self.pos_freqs):
            f = (2.0 ** level) * math.pi
            parts += [torch.sin(f * o), torch.cos(f * o)]
        return torch.cat(parts, dim=-1)

    def project_cells(self, flat: torch.Tensor) -> torch.Tensor:
        """(B, cells, C) cell features -> (B, cells, hidden[0]) = W_z z + b."""
        return self.z_proj(flat)

    def head(self, zp: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """Projected features (..., h0) + raw offsets (..., 2) -> (..., K)."""
        return self.rest(zp + self.o_proj(self.encode_offset(o)))


# ----------------------------------------------------------------------------- lookup


def cell_lookup(coords: torch.Tensor, gh: int, gw: int, sx: float, sy: float):
    """Cell hit by ``coords`` shifted by (sx hx, sy hy), and the offset from its centre.

    coords: (B, N, 2) normalised xy. Returns flat cell index (B, N) int64 = iy * gw + ix and
    offset (B, N, 2) of the *unshifted* coords from that cell's centre, in half cells.
    """
    hx, hy = 1.0 / gw, 1.0 / gh
    x = coords[..., 0]
    y = coords[..., 1]
    # floor((u + 1) / cell) with the cell = 2 * half cell; clamp in float, then cast.
    ix = torch.floor((x + sx * hx + 1.0) / (2.0 * hx)).clamp(0.0, gw - 1.0)
    iy = torch.floor((y + sy * hy + 1.0) / (2.0 * hy)).clamp(0.0, gh - 1.0)
    cx = (2.0 * ix + 1.0) * hx - 1.0
    cy = (2.0 * iy + 1.0) * hy - 1.0
    offset = torch.stack([(x - cx) / hx, (y - cy) / hy], dim=-1)
    index = (iy * gw + ix).to(torch.int64)
    return index, offset


def query_neighbours(grid: torch.Tensor, coords: torch.Tensor, mlp: QueryMLP,
                     ensemble: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate the MLP at query points from each ensemble neighbour.

    grid: (B, C, gh, gw) feature grid. coords: (B, N, 2) normalised xy.
    Returns preds (B, E, N, K) and blend weights (B, E, N) summing to 1 over E, where
    E = 4 with the local ensemble and E = 1 (nearest cell only) without.
    """
    b, _, gh, gw = grid.shape
    n = coords.shape[1]
    flat = mlp.project_cells(grid.flatten(2).transpose(1, 2))  # (B, cells, h0)
    shifts = ENSEMBLE_SHIFTS if ensemble else ((0.0, 0.0),)
    idx, off = [], []
    for sx, sy in shifts:
        i, o = cell_lookup(coords, gh, gw, sx, sy)
        idx.append(i)
        off.append(o)
    index = torch.cat(idx, dim=1)  # (B, E*N)
    offset = torch.cat(off, dim=1)  # (B, E*N, 2)
    zp = torch.gather(flat, 1, index.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))
    preds = mlp.head(zp, offset)  # (B, E*N, K)
    e = len(shifts)
    preds = preds.reshape(b, e, n, preds.shape[-1])
    if not ensemble:
        return preds, torch.ones_like(preds[..., 0])
    offset = offset.reshape(b, e, n, 2)
    area = (offset[..., 0] * offset[..., 1]).abs() + 1e-9  # (B, 4, N)
    opposite = area.flip(1)  # shift i <-> 3 - i
    weights = opposite / opposite.sum(dim=1, keepdim=True)
    return preds, weights


def query(grid: torch.Tensor, coords: torch.Tensor, mlp: QueryMLP,
          ensemble: bool = True) -> torch.Tensor:
    """Blended confidences (B, N, K) at normalised query points coords (B, N, 2)."""
    preds, weights = query_neighbours(grid, coords, mlp, ensemble)
    return (preds * weights.unsqueeze(-1)).sum(dim=1)


# ----------------------------------------------------------------------------- grids


def aspect_size(res: int | tuple[int, int] | list[int], input_hw: tuple[int, int]):
    """Heatmap size (h, w): an int gives the height, width follows the input aspect."""
    if isinstance(res, (tuple, list)):
        return int(res[0]), int(res[1])
    h, w = input_hw
    return int(res), max(1, int(round(res * w / h)))


def pixel_centres(h: int, w: int) -> torch.Tensor:
    """(h*w, 2) normalised xy of the pixel centres of an h x w map, row-major."""
    ys = (2.0 * torch.arange(h, dtype=torch.float32) + 1.0) / h - 1.0
    xs = (2.0 * torch.arange(w, dtype=torch.float32) + 1.0) / w - 1.0
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def sample_queries(grid_hw: tuple[int, int], batch: int, per_cell: int, mode: str = "uniform",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Training queries: (batch, gh*gw*per_cell, 2) normalised xy, ``per_cell`` in every cell.

    ``uniform``: each cell is split into m x m sub-cells (m^2 = per_cell) and gets one
    uniformly jittered sample per sub-cell. ``random``: per_cell uniform samples per cell.
    Samples are ordered cell-major (row, col), then sub-cell row-major.
    """
    gh, gw = grid_hw
    if mode == "uniform":
        m = int(round(math.sqrt(per_cell)))
        if m * m != per_cell:
            raise ModelError(f"uniform query sampling needs a square samples_per_cell, "
                             f"got {per_cell}; use e.g. 4, 16 or 64")
        sub = (torch.arange(m, dtype=torch.float32) + 0.0) / m  # sub-cell origin in [0, 1)
        sy, sx = torch.meshgrid(sub, sub, indexing="ij")
        base = torch.stack([sx.reshape(-1), sy.reshape(-1)], -1)  # (per_cell, 2)
        jitter = torch.rand(batch, gh, gw, per_cell, 2, generator=generator) / m
        frac = base + jitter
    elif mode == "random":
        frac = torch.rand(batch, gh, gw, per_cell, 2, generator=generator)
    else:
        raise ModelError(f"unknown nerpe sampling mode {mode!r}; choose 'uniform' or 'random'")
    col = torch.arange(gw, dtype=torch.float32).view(1, 1, gw, 1)
    row = torch.arange(gh, dtype=torch.float32).view(1, gh, 1, 1)
    x = (col + frac[..., 0]) * (2.0 / gw) - 1.0
    y = (row + frac[..., 1]) * (2.0 / gh) - 1.0
    return torch.stack([x, y], dim=-1).reshape(batch, gh * gw * per_cell, 2)


# ----------------------------------------------------------------------------- decoders


# Largest grid (query points) a decoder may evaluate at once: 512 x 512 (~1 GiB per image
# with a 256-wide MLP and local ensemble); larger asks exhaust memory in the exported graph.
MAX_QUERIES = 512 * 512


@dataclass(frozen=True)
class DecoderSettings:
    """Inference decoding. ``dense``: argmax over a ``resolution`` grid. ``progressive``:
    argmax over a ``coarse`` grid, then ``steps`` times per joint a (r + overlap)^2 window
    around the peak at a fine cell r times smaller. Progressive (coarse, r, steps) reaches
    the effective resolution of dense at coarse * r**steps (``overlap`` must be even so the
    window points lie on that dense grid)."""

    mode: str = "progressive"
    resolution: int | tuple[int, int] = 64
    coarse: int | tuple[int, int] = 32
    r: int = 4
    overlap: int = 2
    steps: int = 1

    @classmethod
    def from_dict(cls, d: dict | None) -> "DecoderSettings":
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(d) - known)
        if extra:
            raise ModelError(f"unknown nerpe decoder setting(s) {extra}; known: {sorted(known)}")
        for k in ("resolution", "coarse"):
            if isinstance(d.get(k), list):
                d[k] = tuple(int(v) for v in d[k])
        s = cls(**d)
        if s.mode not in ("dense", "progressive"):
            raise ModelError(f"unknown nerpe decoder mode {s.mode!r}; "
                             "choose 'dense' or 'progressive'")
        if s.r < 1 or s.steps < 0 or s.overlap < 0:
            raise ModelError(f"nerpe progressive decoder needs r >= 1, steps >= 0, "
                             f"overlap >= 0; got r={s.r} steps={s.steps} overlap={s.overlap}")
        if s.overlap % 2:
            raise ModelError(f"nerpe progressive decoder overlap must be even (got "
                             f"{s.overlap}) so the search window stays on the fine grid")
        sizes = [s.resolution] if s.mode == "dense" else [s.coarse]
        for size in sizes:
            h, w = (size, size) if isinstance(size, int) else size
            if min(h, w) < 2 or h * w > MAX_QUERIES:
                # every query point runs the MLP on a feature vector per ensemble neighbour
                gib = h * w * 4 * 256 * 4 / 2**30
                raise ModelError(
                    f"nerpe {s.mode} grid {h}x{w} is out of range: {h * w:,} query points "
                    f"would need about {gib:.0f} GiB per image; use at most "
                    f"{int(MAX_QUERIES ** 0.5)}x{int(MAX_QUERIES ** 0.5)} (and at least 2x2), "
                    "or progressive decoding for a fine answer at a fraction of the cost")
        return s

    def effective_size(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the dense grid this decoder's final answer lies on."""
        if self.mode == "dense":
            return aspect_size(self.resolution, input_hw)
        ch, cw = aspect_size(self.coarse, input_hw)
        f = self.r ** self.steps
        return ch * f, cw * f


def argmax_points(conf: torch.Tensor, points: torch.Tensor):
    """conf (B, K, N), points (B, K, N, 2) -> peak xy (B, K, 2), peak value (B, K)."""
    value, idx = conf.max(dim=-1)
    peak = torch.gather(points, 2, idx[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
    return peak, value


def decode_dense(grid: torch.Tensor, mlp: QueryMLP, size_hw: tuple[int, int],
                 ensemble: bool = True):
    """Argmax over an h x w grid of pixel centres -> (peak (B, K, 2) norm, value (B, K))."""
    b = grid.shape[0]
    pts = pixel_centres(*size_hw).to(grid.dtype)  # (N, 2)
    conf = query(grid, pts.unsqueeze(0).expand(b, -1, -1), mlp, ensemble)  # (B, N, K)
    conf = conf.transpose(1, 2)  # (B, K, N)
    k = conf.shape[1]
    points = pts.view(1, 1, -1, 2).expand(b, k, -1, -1)
    return argmax_points(conf, points)


def window_offsets(n: int) -> torch.Tensor:
    """(n*n, 2) window offsets in fine cells, centred: (j - (n - 1) / 2) for j < n."""
    t = torch.arange(n, dtype=torch.float32) - (n - 1) / 2.0
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def decode_progressive(grid: torch.Tensor, mlp: QueryMLP, coarse_hw: tuple[int, int],
                       r: int, overlap: int, steps: int, ensemble: bool = True):
    """NerPE-p: coarse dense argmax, then ``steps`` refinements per joint.

    After step s the fine cell is (2 / coarse) / r**s wide; the window is n x n points,
    n = r + overlap, at (j - (n - 1) / 2) fine cells from the current peak - with ``overlap``
    even these are exactly the points of the dense grid at coarse * r**s that lie in the
    current peak's cell (r x r) plus overlap / 2 rings of its neighbours. Points are
    clamped to the outermost pixel centres so windows at the border stay inside [-1, 1]
    (the duplicates they create do not change the argmax). Returns (peak (B, K, 2) norm,
    value (B, K)).
    """
    peak, value = decode_dense(grid, mlp, coarse_hw, ensemble)
    b, k = value.shape
    n = r + overlap
    offs = window_offsets(n).to(grid.dtype)  # (n*n, 2)
    eye = torch.eye(k, dtype=grid.dtype).view(1, k, 1, k)
    ch, cw = coarse_hw
    for s in range(1, steps + 1):
        dx = (2.0 / cw) / (r ** s)
        dy = (2.0 / ch) / (r ** s)
        step = torch.stack([offs[:, 0] * dx, offs[:, 1] * dy], dim=-1)  # (n*n, 2) norm
        pts = peak.unsqueeze(2) + step.view(1, 1, n * n, 2)  # (B, K, n*n, 2)
        px = pts[..., 0].clamp(-1.0 + dx / 2, 1.0 - dx / 2)
        py = pts[..., 1].clamp(-1.0 + dy / 2, 1.0 - dy / 2)
        pts = torch.stack([px, py], dim=-1)
        conf = query(grid, pts.reshape(b, k * n * n, 2), mlp, ensemble)  # (B, K*n*n, K)
        # joint k only reads its own output channel on its own window
        conf = (conf.reshape(b, k, n * n, k) * eye).sum(-1)  # (B, K, n*n)
        peak, value = argmax_points(conf, pts)
    return peak, value


# ----------------------------------------------------------------------------- accounting


def mlp_macs(hidden, feat_dim: int, pos_dim: int, num_joints: int) -> tuple[int, int]:
    """(per-cell MACs of W_z z, per-evaluation MACs of the rest of the MLP)."""
    dims = list(hidden) + [num_joints]
    per_eval = pos_dim * dims[0] + sum(dims[i] * dims[i + 1] for i in range(len(hidden)))
    return feat_dim * dims[0], per_eval


def decoder_cost(num_joints: int, hidden, feat_dim: int, pos_dim: int = 2, mode: str = "dense",
                 resolution: int | tuple[int, int] = 64, coarse: int | tuple[int, int] = 32,
                 r: int = 4, overlap: int = 2, steps: int = 1, cells: int = 64,
                 ensemble: int = 4) -> dict[str, int]:
    """Decoder work per image (MLP only; the backbone and the grid adapter are not counted).

    ``queries``: query points (a progressive step counts n^2 per joint, n = r + overlap).
    ``evals`` = queries * ensemble (4 with local ensemble). ``macs``: as implemented
    (W_z z once per cell + the rest per evaluation). ``macs_naive``: the paper's
    formulation, the full MLP on concat(z, o) per evaluation. Int sizes are square.
    """
    def area(res):
        if isinstance(res, (tuple, list)):
            return int(res[0]) * int(res[1])
        return int(res) ** 2

    if mode == "dense":
        queries = area(resolution)
    elif mode == "progressive":
        queries = area(coarse) + steps * num_joints * (r + overlap) ** 2
    else:
        raise ModelError(f"unknown nerpe decoder mode {mode!r}; choose 'dense' or 'progressive'")
    per_cell, per_eval = mlp_macs(hidden, feat_dim, pos_dim, num_joints)
    evals = queries * ensemble
    # the first layer's feature part is computed once per cell per MLP pass
    passes = 1 + (steps if mode == "progressive" else 0)
    return {
        "queries": queries,
        "evals": evals,
        "macs": evals * per_eval + passes * cells * per_cell,
        "macs_naive": evals * (per_eval + per_cell),
    }

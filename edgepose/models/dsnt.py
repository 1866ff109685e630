"""DSNT: differentiable spatial to numerical transform (Nibali et al. 2018), dsntnn style.

Small stateless functions first, then :class:`DSNTHead`. Coordinates are *normalised*
as in ``edgepose/coords.py``: the heatmap's (and the input's) pixel edges are at -1 and
+1, pixel i of a map of width W has its centre at (2i + 1) / W - 1::

      W = 4:   |  .  |  .  |  .  |  .  |
              -1  -0.75 -0.25 0.25 0.75 +1     <- pixel centres

A heatmap and the input it covers share this space, so a normalised coordinate is read
in input pixels with ``coords.norm_to_pixel_xy(uv, W_in, H_in)``; no stride is involved.

Shapes: B batch, K joints, H x W heatmap. "px" = heatmap pixels unless stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.coords import norm_to_pixel_xy, pixel_to_norm_xy
from edgepose.models.neck import (
    NeckConfig,
    UpsampleNeck,
    init_from_movenet,
    make_head_conv,
    RefineUp,
    check_soft_weight,
    head_maps,
    teacher_sees,
    teacher_targets,
    out_stride,
    output_size,
    split_config,
)

# MoveNet-initialised DSNT heads scale MoveNet's heatmap logits by this (see init_from_movenet)
DSNT_INIT_SCALE = 4.0
# Teacher maps as JS targets: MoveNet's sigmoid background (~0.005 a cell) holds most of a
# 64x64 map's sum, so cells below SOFT_FLOOR are dropped before normalising; joints the
# teacher does not see (neck.teacher_sees) keep the Gaussian.
SOFT_FLOOR = 0.1
# Added inside logarithms; dsntnn uses the same value. Keeps KL finite where p = 0.
EPS = 1e-24

# ----------------------------------------------------------------------------- functions


def normalised_grid(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(size,) normalised pixel-centre coordinates (2i + 1) / size - 1."""
    i = torch.arange(size, device=device, dtype=dtype)
    return (2 * i + 1) / size - 1


def flat_softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over each (H, W) map: B x K x H x W logits -> B x K x H x W, each map sums to 1."""
    b, k, h, w = x.shape
    return F.softmax(x.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)


def dsnt(heatmaps: torch.Tensor) -> torch.Tensor:
    """Expected location of each map: B x K x H x W probabilities -> B x K x 2 (x, y), normalised.

    x = sum_ij p_ij * grid_x[j], y = sum_ij p_ij * grid_y[i]; computed from the row and
    column marginals (two small sums instead of two full-size grids).
    """
    _, _, h, w = heatmaps.shape
    gx = normalised_grid(w, heatmaps.device, heatmaps.dtype)
    gy = normalised_grid(h, heatmaps.device, heatmaps.dtype)
    x = (heatmaps.sum(dim=2) * gx).sum(dim=-1)  # column marginal (B, K, W) . grid
    y = (heatmaps.sum(dim=3) * gy).sum(dim=-1)  # row marginal (B, K, H) . grid
    return torch.stack([x, y], dim=-1)


def euclidean_losses(actual: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-joint Euclidean distance: B x K x 2 and B x K x 2 (normalised) -> B x K (normalised)."""
    return torch.linalg.vector_norm(actual - target, dim=-1)


def make_gauss(means: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """Normalised Gaussians: B x K x 2 means (normalised) -> B x K x H x W, each sums to 1.

    ``sigma`` is in heatmap pixels (the same in x and y). A mean far outside the map
    gives an all-zero map rather than NaN (callers mask such joints).
    """
    h, w = size
    gx = normalised_grid(w, means.device, means.dtype)
    gy = normalised_grid(h, means.device, means.dtype)
    # One heatmap pixel is 2 / W normalised units wide.
    sx, sy = sigma * 2.0 / w, sigma * 2.0 / h
    ex = torch.exp(-0.5 * ((gx - means[..., 0:1]) / sx) ** 2)  # (B, K, W)
    ey = torch.exp(-0.5 * ((gy - means[..., 1:2]) / sy) ** 2)  # (B, K, H)
    gauss = ey[..., :, None] * ex[..., None, :]
    total = gauss.sum(dim=(-2, -1), keepdim=True)
    return gauss / total.clamp_min(1e-12)


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per map: B x K x H x W -> B x K (nats)."""
    return (p * ((p + EPS).log() - (q + EPS).log())).sum(dim=(-2, -1))


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence per map: B x K x H x W (each summing to 1) -> B x K, in [0, ln 2]."""
    m = 0.5 * (p + q)
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def js_reg_losses(heatmaps: torch.Tensor, mu_t: torch.Tensor, sigma_t: float) -> torch.Tensor:
    """JS regularisation: divergence of each heatmap from a Gaussian at the target.

    Args:
        heatmaps: B x K x H x W probabilities.
        mu_t: B x K x 2 target means, normalised.
        sigma_t: target standard deviation in heatmap pixels.

    Returns:
        B x K divergences (nats); 0 when a heatmap equals ``make_gauss(mu_t, ..., sigma_t)``.
    """
    gauss = make_gauss(mu_t, tuple(heatmaps.shape[-2:]), sigma_t)
    return js_divergence(heatmaps, gauss)


def masked_mean(losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of B x K ``losses`` over joints with ``mask`` > 0 (0 if none); NaN-safe."""
    m = (mask > 0).to(losses.dtype)
    safe = torch.where(m > 0, losses, torch.zeros_like(losses))
    return (safe * m).sum() / m.sum().clamp_min(1.0)


def window_mass(heatmaps: torch.Tensor, window: int) -> torch.Tensor:
    """Largest probability mass inside any ``window`` x ``window`` box: B x K x H x W -> B x K in [0, 1].

    Export-friendly (AveragePool + ReduceMax). Zero padding outside the map, so a box at
    the border only counts the pixels inside.
    """
    pooled = F.avg_pool2d(heatmaps, window, stride=1, padding=window // 2, count_include_pad=True)
    return (pooled * (window * window)).amax(dim=(-2, -1)).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- head


@dataclass
class DSNTConfig(NeckConfig):
    """DSNT head settings.

    ``sigma``: std of the JS regulariser's target Gaussian, heatmap px. ``js_weight``: the
    regulariser's weight (lambda). ``score_window``: odd box size for the confidence score;
    0 = 2 * ceil(2 * sigma) + 1 (5 for sigma 1), which holds ~95 % of the mass of a
    heatmap shaped like the training target.
    """

    sigma: float = 1.0
    js_weight: float = 1.0
    score_window: int = 0
    # A learned softmax temperature: logits x exp(log_temp), one scalar trained with the
    # head. Started from MoveNet, log_temp starts at log(DSNT_INIT_SCALE) and the 1x1 conv
    # keeps MoveNet's own logits (x1), instead of a fixed x4 baked into its weights.
    learn_temperature: bool = False
    # Dense teacher targets (issue 29 item 3): where the teacher sees a joint (its map's
    # peak >= neck.SOFT_MIN_PEAK; data source ``maps``) the JS term is (1 - w) x JS to the
    # label's Gaussian + w x JS to the teacher's heatmap (floor SOFT_FLOOR removed,
    # normalised), the teacher's alone where nobody labelled the joint; the Euclidean term
    # stays on the labels. 0 = labels only.
    soft_weight: float = 0.0


class DSNTHead(nn.Module):
    """Neck -> 1x1 conv -> flat softmax -> DSNT expectation.

    Inference ``forward``: coords (B, K, 2) input px, scores (B, K) = probability mass in
    the best ``score_window`` box (high, ~0.9+, for a sharp single-peaked heatmap; ~
    window^2 / (H W) for a flat one).
    Training: loss = mean Euclidean distance (normalised units) + js_weight * JS
    divergence to a Gaussian of ``sigma`` px at the target, both averaged over visible
    joints.
    """

    def __init__(
        self,
        in_channels: int,
        in_stride: int,
        input_size: tuple[int, int],
        num_joints: int,
        decoder: dict | None = None,
        **head_cfg,
    ):
        super().__init__()
        self.cfg: DSNTConfig = split_config(DSNTConfig, head_cfg, "dsnt")
        check_soft_weight(self.cfg.soft_weight)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = output_size(self.input_size, in_stride, out_stride(self.cfg))
        self.neck = UpsampleNeck(in_channels, in_stride, self.cfg)
        self.final = make_head_conv(self.neck.out_channels, num_joints)
        self.refine = (RefineUp(self.neck.out_channels, num_joints, self.cfg.refine)
                       if self.cfg.refine else None)
        win = self.cfg.score_window or 2 * math.ceil(2 * self.cfg.sigma) + 1
        self.score_window = int(win) | 1  # odd, so the box is centred on a pixel
        if self.cfg.learn_temperature:
            self.log_temp = nn.Parameter(torch.zeros(()))

    def init_from_movenet(self, path) -> str:
        """With a separable neck of width 96, start from MoveNet's keypoint-heatmap head in
        the imported MoveNet file ``path`` (:func:`edgepose.models.neck.init_from_movenet`).
        """
        # MoveNet's logits were trained for a sigmoid: under a softmax over the whole map
        # its many mildly negative background cells hold about half the mass and pull the
        # expectation to the centre. x4 makes them negligible (measured on the 12 LSP test
        # photos at 128x128 before training: PCK@0.2 0.36 at x1, 0.77 at x3, 0.79 at x4, 0.80 at x6).
        if self.cfg.learn_temperature:
            done = init_from_movenet(self.neck, self.final, path)
            if done:
                with torch.no_grad():
                    self.log_temp.fill_(math.log(DSNT_INIT_SCALE))
                done += f", learned temperature from x{DSNT_INIT_SCALE:g}"
            return done
        return init_from_movenet(self.neck, self.final, path, scale=DSNT_INIT_SCALE)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Backbone features -> B x K x h x w logits (after the temperature)."""
        x = head_maps(self.neck, self.final, self.refine, feats)
        if self.cfg.learn_temperature:
            x = x * self.log_temp.exp()
        return x

    def heatmaps(self, feats: torch.Tensor) -> torch.Tensor:
        """Backbone features -> B x K x h x w probabilities."""
        return flat_softmax(self.logits(feats))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = self.heatmaps(feats)
        h_in, w_in = self.input_size
        coords = norm_to_pixel_xy(dsnt(probs), w_in, h_in)
        return coords, window_mass(probs, self.score_window)

    def forward_train(self, feats: torch.Tensor, batch: dict | None = None) -> dict:
        probs = self.heatmaps(feats)
        return {"heatmaps": probs, "coords_norm": dsnt(probs)}

    def loss(self, train_out: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        h_in, w_in = self.input_size
        visible = batch["visible"]
        # Invisible joints may hold any value (even NaN); park them at 0 so no NaN can
        # leak into gradients through the masked terms.
        kp = torch.nan_to_num(batch["keypoints"].float())
        target = pixel_to_norm_xy(kp, w_in, h_in)
        target = torch.where(visible[..., None] > 0, target, torch.zeros_like(target))
        euc = masked_mean(euclidean_losses(train_out["coords_norm"], target), visible)
        probs = train_out["heatmaps"]
        js_each = js_reg_losses(probs, target, self.cfg.sigma)
        js_mask = visible
        soft = teacher_targets(batch, probs.shape[-2:]) if self.cfg.soft_weight else None
        if soft is not None:
            maps, mask = soft
            seen = teacher_sees(maps, mask)
            q = (maps - SOFT_FLOOR).clamp(min=0.0)
            q = q / q.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
            js_soft = js_divergence(probs, q.to(probs.dtype))
            w = self.cfg.soft_weight
            mixed = torch.where(visible > 0, (1.0 - w) * js_each + w * js_soft, js_soft)
            js_each = torch.where(seen, mixed, js_each)
            js_mask = torch.where(seen, torch.ones_like(visible), visible)
        js = masked_mean(js_each, js_mask)
        total = euc + self.cfg.js_weight * js
        return total, {"euclidean": float(euc.detach()), "js": float(js.detach())}

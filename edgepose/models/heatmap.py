"""SimpleBaseline heatmap head: neck -> 1x1 conv -> K heatmaps, MSE to Gaussian targets.

Targets and decoding both come from one :class:`~edgepose.models.codecs.GaussianHeatmapCodec`
built here from the head's settings, so training targets and inference decoding can never
disagree about sigma, stride or the coordinate convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.models.codecs import GaussianHeatmapCodec
from edgepose.models.neck import (
    NeckConfig,
    UpsampleNeck,
    init_from_movenet,
    make_head_conv,
    RefineUp,
    check_soft_weight,
    head_maps,
    teacher_targets,
    out_stride,
    output_size,
    split_config,
)


@dataclass
class HeatmapConfig(NeckConfig):
    """Heatmap head settings. ``sigma``: target Gaussian std in heatmap px;
    ``shift``: sub-pixel decoding step towards the higher neighbour (heatmap px)."""

    sigma: float = 2.0
    shift: float = 0.25
    # False: linear output, MSE to the Gaussian (SimpleBaseline). True: the output is
    # logits (as MoveNet's keypoint heatmap, so the head can start from it), decoded
    # through a sigmoid and trained with a quality focal loss (Li et al. 2020,
    # |t - p|^2 * BCE(p, t): continuous targets, no collapse to zero).
    logits: bool = False
    # Dense teacher targets (issue 29 item 3): loss = (1 - w) x the loss to the labels'
    # Gaussians + w x the same loss to the teacher's heatmaps (data source ``maps``), every
    # joint of every person that has them; 0 = labels only, 1 = the teacher's maps only.
    soft_weight: float = 0.0


class HeatmapHead(nn.Module):
    """Inference ``forward``: coords (B, K, 2) input px from argmax + quarter-pixel shift,
    scores (B, K) = heatmap peak clamped to [0, 1] (targets peak at 1, so a trained model's
    peak reads as a confidence).

    Training: loss = mean over (B, K, h, w) of weight * (heatmap - target)^2 with weight 0
    for invisible joints and joints outside the heatmap (SimpleBaseline's joint MSE,
    without its factor 0.5).
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
        self.cfg: HeatmapConfig = split_config(HeatmapConfig, head_cfg, "heatmap")
        check_soft_weight(self.cfg.soft_weight)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = output_size(self.input_size, in_stride, out_stride(self.cfg))
        self.codec = GaussianHeatmapCodec(
            self.input_size, self.heatmap_size, sigma=self.cfg.sigma, shift=self.cfg.shift
        )
        self.neck = UpsampleNeck(in_channels, in_stride, self.cfg)
        self.final = make_head_conv(self.neck.out_channels, num_joints)
        self.refine = (RefineUp(self.neck.out_channels, num_joints, self.cfg.refine)
                       if self.cfg.refine else None)

    def init_from_movenet(self, path) -> str:
        """With a separable neck of width 96, start from MoveNet's keypoint-heatmap head in
        the imported MoveNet file ``path`` (its logits, as this head's with ``logits: true``):
        :func:`edgepose.models.neck.init_from_movenet`."""
        return init_from_movenet(self.neck, self.final, path)

    def heatmaps(self, feats: torch.Tensor) -> torch.Tensor:
        """Backbone features -> (B, K, h, w) heatmaps (unbounded; trained towards [0, 1])."""
        return head_maps(self.neck, self.final, self.refine, feats)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.heatmaps(feats)
        return self.codec.decode(torch.sigmoid(maps) if self.cfg.logits else maps)

    def forward_train(self, feats: torch.Tensor, batch: dict | None = None) -> dict:
        return {"heatmaps": self.heatmaps(feats)}

    def loss(self, train_out: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        pred = train_out["heatmaps"]
        keypoints = torch.nan_to_num(batch["keypoints"].float(), nan=-1e4)
        targets, weights = self.codec.encode(keypoints, batch["visible"])
        name = "qfl" if self.cfg.logits else "mse"
        loss = self._map_loss(pred, targets, weights)
        parts = {name: float(loss.detach())}
        soft = teacher_targets(batch, pred.shape[-2:]) if self.cfg.soft_weight else None
        if soft is not None:
            maps, mask = soft
            term = self._map_loss(pred, maps, mask[:, None].expand(weights.shape))
            w = self.cfg.soft_weight
            loss = (1.0 - w) * loss + w * term
            parts["soft_" + name] = float(term.detach())
        return loss, parts

    def _map_loss(self, pred: torch.Tensor, targets: torch.Tensor,
                  weights: torch.Tensor) -> torch.Tensor:
        """Logits: quality focal loss summed over each map, averaged over weighted joints;
        else the joint MSE averaged over all cells."""
        t = targets.to(pred.dtype)
        w = weights[..., None, None].to(pred.dtype)
        if self.cfg.logits:
            bce = F.binary_cross_entropy_with_logits(pred, t, reduction="none")
            qfl = (torch.sigmoid(pred) - t).abs().pow(2) * bce
            return (qfl * w).sum() / weights.sum().clamp(min=1.0)
        return ((pred - t) ** 2 * w).mean()

"""NerPE's equal start on MoveNet's trunk: fit the head to what MoveNet's own head knows.

The heatmap and DSNT heads start from MoveNet's keypoint-heatmap head (``kpt_heatmap_0``):
their separable layer and 1x1 conv *are* MoveNet's. Nothing in MoveNet has NerPE's shape (a
grid adapter to 8x8 cells and an MLP queried at continuous positions), so before the
supervised phase the adapter + MLP are fitted, trunk frozen and labels unused, to reproduce
MoveNet's head on the training crops: its sigmoid heatmaps (B x K x h x w, h = H / 4),
bilinearly sampled at NerPE's query points, are the query targets. The aim is a start that
locates joints about as well as MoveNet's own head; measured (``benchmarks/head_starts.py``,
real photos) it does not get there in a CPU budget: LSP PCK@0.2 0.229 at 128 px after 300
batches, against 0.711 for MoveNet's head.

Sampling convention: queries are normalised xy with pixel *edges* at +-1 (``coords.py``),
which is ``grid_sample(align_corners=False)``'s convention, so a query at a heatmap pixel's
centre reads exactly that pixel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.errors import ModelError
from edgepose.models.neck import init_from_movenet, movenet_heatmap_layers


class MoveNetHeatmaps(nn.Module):
    """MoveNet's keypoint-heatmap head alone: trunk features (B, C, h, w) -> sigmoid
    heatmaps (B, 17, h, w) in [0, 1]. Frozen; a reference, never trained or exported."""

    def __init__(self, in_channels: int, in_stride: int):
        super().__init__()
        self.neck, self.final = movenet_heatmap_layers(in_channels, in_stride, 17)

    @classmethod
    def from_file(cls, path, in_channels: int, in_stride: int) -> "MoveNetHeatmaps":
        ref = cls(in_channels, in_stride)
        if not init_from_movenet(ref.neck, ref.final, Path(path)):
            raise ModelError(f"{path}: not an imported MoveNet weights file whose "
                             f"kpt_heatmap_0 fits a {in_channels}-channel trunk; make one "
                             "with 'edgepose weights import movenet-lightning'")
        ref.requires_grad_(False)
        return ref.eval()

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.final(self.neck(feats)))


def sample_heatmaps(heatmaps: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Bilinear values of heatmaps (B, K, h, w) at normalised queries (B, N, 2) -> (B, N, K)."""
    grid = queries.to(heatmaps.dtype).unsqueeze(2)  # (B, N, 1, 2)
    out = F.grid_sample(heatmaps, grid, mode="bilinear", padding_mode="border",
                        align_corners=False)  # (B, K, N, 1)
    return out[..., 0].transpose(1, 2)


def start_loss(head: nn.Module, reference: MoveNetHeatmaps, feats: torch.Tensor):
    """0.5 * MSE of every ensemble neighbour's prediction against MoveNet's sampled
    heatmap, all joints (the reference is a target everywhere, not only where a person
    labelled the joint). Returns (loss, mean |blend - target| for the log)."""
    out = head.forward_train(feats, None)
    with torch.no_grad():
        target = sample_heatmaps(reference(feats), out["queries"])  # (B, N, K)
    preds = out["preds"]  # (B, E, N, K)
    loss = 0.5 * ((preds - target.unsqueeze(1)) ** 2).mean()
    with torch.no_grad():
        blend = (preds * out["weights"].unsqueeze(-1)).sum(1)
        mae = float((blend - target).abs().mean())
    return loss, mae


def fit_nerpe_start(model: nn.Module, pretrained, images: Iterable[torch.Tensor], steps: int,
                    lr: float = 1e-3, log=None) -> list[float]:
    """Fit ``model.head`` (a NerPE head) to MoveNet's own head on ``steps`` batches of
    training crops (``images`` yields (B, 3, H, W) tensors already normalised for the
    model); the trunk is frozen and stays in eval mode. Returns the per-step MAE.

    ``log(step, loss, mae)`` is called every 20 steps and at the end."""
    head = model.head
    if not hasattr(head, "mlp"):
        raise ModelError("head_start applies to the nerpe head only")
    trunk = model.backbone
    reference = MoveNetHeatmaps.from_file(pretrained, trunk.out_channels, trunk.stride)
    device = next(head.parameters()).device
    reference.to(device)
    # MoveNet's own heatmap layers inside a 'movenet' adapter are the target itself: fixed
    params = [p for n, p in head.named_parameters() if p.requires_grad
              and not n.startswith(("adapter.neck.", "adapter.final."))]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1),
                                                pct_start=0.1)
    was = trunk.training
    trunk.eval()
    head.train()
    maes: list[float] = []
    it: Iterator = iter(images)
    for step in range(steps):
        x = next(it).to(device)
        with torch.no_grad():
            feats = trunk(x)
        loss, mae = start_loss(head, reference, feats)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        maes.append(mae)
        if log is not None and (step % 20 == 0 or step == steps - 1):
            log(step, float(loss.detach()), mae)
    trunk.train(was)
    return maes

"""PoseModel = backbone + head, and the head contract every head follows.

Head contract (``edgepose/models/<head>.py``)::

    class SomeHead(nn.Module):
        def __init__(self, in_channels: int, in_stride: int, input_size: tuple[int, int],
                     num_joints: int, decoder: dict | None = None, **head_cfg): ...
        def forward(self, feats) -> tuple[Tensor, Tensor]:
            # inference: coords (B, K, 2) in *input pixels* (coords.py convention),
            # scores (B, K) in [0, 1]. Decoding lives here so it is exported to ONNX.
        def forward_train(self, feats, batch) -> dict[str, Tensor]:
            # training-only outputs (heatmaps, query confidences, ...)
        def loss(self, train_out, batch) -> tuple[Tensor, dict[str, float]]:
            # scalar loss and named parts for logging

``batch`` is the dataset's collated dict: ``image`` (B, 3, H, W), ``keypoints`` (B, K, 2)
float32 in input pixels, ``visible`` (B, K) float32 (1 = labelled and inside the crop).
"""

from __future__ import annotations


from pathlib import Path

import torch
from torch import nn

from edgepose.errors import ModelError
from edgepose.metadata import HEAD_NAMES, ModelMeta

def head_class(name: str):
    """The head class for ``name`` (imported only when asked for)."""
    if name == "heatmap":
        from edgepose.models.heatmap import HeatmapHead

        return HeatmapHead
    if name == "dsnt":
        from edgepose.models.dsnt import DSNTHead

        return DSNTHead
    if name == "nerpe":
        from edgepose.models.nerpe import NerPEHead

        return NerPEHead
    if name == "movenet":
        from edgepose.models.movenet import MoveNetHead

        return MoveNetHead
    raise ModelError(f"unknown head {name!r}; choose one of {list(HEAD_NAMES)}")


class PoseModel(nn.Module):
    """Backbone + head. ``forward`` returns decoded (coords, scores) in input pixels."""

    def __init__(self, meta: ModelMeta, pretrained: bool | str = False):
        super().__init__()
        from edgepose.models.backbone import build_backbone

        self.meta = meta
        self.backbone = build_backbone(meta.backbone, stride=meta.stride, pretrained=pretrained)
        self.head = head_class(meta.head)(
            in_channels=self.backbone.out_channels,
            in_stride=self.backbone.stride,
            input_size=tuple(meta.input_size),
            num_joints=meta.num_joints,
            decoder=dict(meta.decoder),
            **meta.head_cfg,
        )
        self.head_init = ""
        if isinstance(pretrained, (str, Path)) and hasattr(self.head, "init_from_movenet"):
            self.head_init = self.head.init_from_movenet(Path(pretrained))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(image))

    def forward_train(self, image: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        return self.head.forward_train(self.backbone(image), batch)

    def loss(self, train_out: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return self.head.loss(train_out, batch)

    @torch.no_grad()
    def predict_numpy(self, batch) -> dict:
        """(B, 3, H, W) float32 numpy (or tensor) on this model's device in eval mode ->
        ``{"coords": (B, K, 2), "scores": (B, K)}`` numpy float32: the one torch inference
        path (the evaluator and the torch backend both call it)."""
        import numpy as np

        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        x = batch if torch.is_tensor(batch) else torch.from_numpy(np.asarray(batch))
        coords, scores = self(x.to(device, non_blocking=True).float())
        self.train(was_training)
        return {"coords": coords.float().cpu().numpy(), "scores": scores.float().cpu().numpy()}


def build_model(meta: ModelMeta, pretrained: bool | str = False) -> PoseModel:
    """Build the network ``meta`` describes. ``pretrained``: True (timm/hub cache) or a
    local weights file for the backbone; never required."""
    return PoseModel(meta, pretrained=pretrained)

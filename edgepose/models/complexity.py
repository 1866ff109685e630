"""Model size and cost: parameter counts and FLOPs.

Units, stated once: **FLOPs = 2 x MACs** (one multiply-accumulate = 2 floating-point
operations), counted by ``torch.utils.flop_counter.FlopCounterMode`` over convolutions
(including transposed ones), linear layers, matmuls and attention. Normalisation,
activations, softmax, pooling and other element-wise operations are *not* counted (the
usual convention of papers that quote GFLOPs). ``count_flops`` returns GFLOPs for a
batch of one image; halve it for GMACs.

A head whose decoder does work outside such ops (e.g. a NerPE search written with
gathers) adds its own analytic count: any submodule that defines a method
``extra_flops(input_size: tuple[int, int]) -> float`` (FLOPs for one image of (H, W)
pixels) has it added to the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements, not bytes); buffers such as BN statistics excluded."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _extra_flops(model: nn.Module, input_size: tuple[int, int]) -> float:
    total = 0.0
    for m in model.modules():
        fn = getattr(m, "extra_flops", None)
        if callable(fn):
            total += float(fn(tuple(input_size)))
    return total


@torch.no_grad()
def flop_counts(model: nn.Module, input_size: tuple[int, int]) -> dict[str, float]:
    """FLOPs (not G) of one (1, 3, H, W) inference forward, by module path.

    Keys are ``"Global"`` (the total) and module paths as FlopCounterMode names them
    (e.g. ``"PoseModel.backbone"``); values are summed over all op types.
    """
    h, w = (int(v) for v in input_size)
    was_training = model.training
    model.eval()
    try:
        p = next(iter(model.parameters()), None)
        x = torch.zeros(1, 3, h, w, device=p.device if p is not None else "cpu")
        counter = FlopCounterMode(display=False, depth=None)
        with counter:
            model(x)
    finally:
        model.train(was_training)
    return {name: float(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}


def count_flops(model: nn.Module, input_size: tuple[int, int]) -> float:
    """GFLOPs (= 2 x GMACs) of one inference forward on a single (1, 3, H, W) image.

    Includes the head and its decoder when they run inside ``model.forward``, plus any
    ``extra_flops`` a submodule declares.
    """
    counts = flop_counts(model, input_size)
    return (counts.get("Global", 0.0) + _extra_flops(model, input_size)) / 1e9


@dataclass
class Complexity:
    """Size and cost of one model at one input size."""

    params: int
    gflops: float
    backbone_params: int | None = None
    head_params: int | None = None
    backbone_gflops: float | None = None
    head_gflops: float | None = None

    @property
    def gmacs(self) -> float:
        return self.gflops / 2.0

    def summary(self) -> str:
        """One line, e.g. ``params 1.23 M, 0.456 GFLOPs (0.228 GMACs)``."""
        return f"params {self.params / 1e6:.2f} M, {self.gflops:.3f} GFLOPs ({self.gmacs:.3f} GMACs)"


def measure(model: nn.Module, input_size: tuple[int, int]) -> Complexity:
    """Parameters and GFLOPs of ``model``, split into backbone and head when it has them."""
    counts = flop_counts(model, input_size)
    extra = _extra_flops(model, input_size)
    total = (counts.get("Global", 0.0) + extra) / 1e9
    out = Complexity(params=count_parameters(model), gflops=total)
    backbone = getattr(model, "backbone", None)
    head = getattr(model, "head", None)
    if isinstance(backbone, nn.Module) and isinstance(head, nn.Module):
        top = type(model).__name__
        out.backbone_params = count_parameters(backbone)
        out.head_params = count_parameters(head)
        out.backbone_gflops = counts.get(f"{top}.backbone", 0.0) / 1e9
        out.head_gflops = (counts.get(f"{top}.head", 0.0) + _extra_flops(head, input_size)) / 1e9
    return out

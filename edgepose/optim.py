"""The optimiser and the learning-rate schedule of ``edgepose train``.

The learning rate is a pure function of training progress in *epochs*
(:class:`LRSchedule`), so a checkpoint resumes on the same curve -- also on a different
number of ranks (the base rate scales with the world size as ``optim.lr_scaling`` says).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from edgepose.config import OptimConfig
from edgepose.distributed import scaled_lr


@dataclass
class LRSchedule:
    """lr(progress) = base_lr * warmup(progress) * decay(progress); progress in epochs (float).

    ``cosine`` decays from 1 to ``min_ratio`` over [warmup, epochs]; ``step`` multiplies by
    ``gamma`` at each milestone epoch. Warm-up is linear from 1/100 to 1.
    """

    base_lr: float
    epochs: float
    kind: str = "cosine"
    warmup: float = 0.0
    min_ratio: float = 0.01
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1

    @classmethod
    def from_config(cls, o: OptimConfig, world_size: int) -> "LRSchedule":
        return cls(scaled_lr(o.lr, o.lr_scaling, world_size), float(o.epochs), o.schedule,
                   float(o.warmup_epochs), o.min_lr_ratio, list(o.milestones), o.gamma)

    def factor(self, progress: float) -> float:
        warm = 1.0
        if self.warmup > 0 and progress < self.warmup:
            warm = 0.01 + 0.99 * progress / self.warmup
        if self.kind == "step":
            decay = self.gamma ** sum(progress >= m for m in self.milestones)
        else:
            span = max(self.epochs - self.warmup, 1e-8)
            t = min(max((progress - self.warmup) / span, 0.0), 1.0)
            decay = self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        return warm * decay

    def lr(self, progress: float) -> float:
        return self.base_lr * self.factor(progress)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_optimizer(model: nn.Module, o: OptimConfig, lr: float) -> torch.optim.Optimizer:
    """AdamW (default) or SGD; no weight decay on biases and norm weights."""
    groups = []
    mult = float(o.backbone_lr_mult)
    for is_backbone in (True, False):
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if p.requires_grad and name.startswith("backbone.") == is_backbone:
                (no_decay if p.ndim <= 1 else decay).append(p)
        m = mult if is_backbone else 1.0
        groups += [{"params": decay, "weight_decay": o.weight_decay, "lr_mult": m},
                   {"params": no_decay, "weight_decay": 0.0, "lr_mult": m}]
    groups = [g for g in groups if g["params"]]
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=o.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)

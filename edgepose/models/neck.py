"""The upsampling neck shared by the heatmap and DSNT heads (SimpleBaseline style).

``n = log2(in_stride / heatmap_stride)`` layers of ConvTranspose 4x4 stride 2 (padding 1)
+ BatchNorm + ReLU take backbone features at ``in_stride`` to heatmap resolution. A 4x4
stride-2 transposed convolution spreads input pixel i over output pixels 2i-1 .. 2i+2,
centred on 2i + 0.5 = (i + 0.5) * 2 - 0.5, i.e. it keeps the pixel-centre convention of
``edgepose/coords.py``. With ``in_stride == heatmap_stride`` the neck is a 3x3 conv + BN +
ReLU to ``width`` channels, so both heads always see ``width`` channels.

Both heads build the same neck from the same :class:`NeckConfig`, so a heatmap-vs-DSNT
comparison at low resolution differs only in the head's last layer, loss and decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch.nn.functional as F
from torch import nn

from edgepose.errors import ModelError


@dataclass
class NeckConfig:
    """Neck settings. ``heatmap_stride``: input pixels per heatmap pixel;
    ``width``: channels of every neck layer."""

    heatmap_stride: int = 4
    width: int = 128
    # "deconv": SimpleBaseline (BN + ReLU layers). "separable": MoveNet's head layer
    # (3x3 depthwise, 1x1 + bias, ReLU; no BatchNorm) at the backbone's stride, so a head on
    # the MoveNet trunk can start from MoveNet's own keypoint-heatmap weights.
    neck: str = "deconv"
    # Stride-2 (and finer) output on top of any neck (issue 29, the seeds' output-resolution
    # variable): ``refine`` x2 stages, each a 4x4 stride-2 transposed conv + ReLU on the
    # neck's features and a zero-started 1x1 whose output is added to the bilinearly
    # upsampled logits. At the start the maps are the stride-``heatmap_stride`` maps
    # upsampled (a head started from MoveNet keeps its start); training learns what lies
    # between the coarse cells. Output stride = heatmap_stride / 2**refine.
    refine: int = 0


def split_config(cls, cfg: dict[str, Any], head: str):
    """Build dataclass ``cls`` from ``cfg``; unknown keys raise a clear :class:`ModelError`."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ModelError(
            f"unknown {head} head setting(s) {unknown}; known settings are {sorted(known)}"
        )
    return cls(**cfg)


def num_upsamples(in_stride: int, heatmap_stride: int) -> int:
    """Number of x2 deconvolutions from ``in_stride`` to ``heatmap_stride`` (>= 0)."""
    if heatmap_stride <= 0 or heatmap_stride > in_stride:
        raise ModelError(
            f"heatmap_stride {heatmap_stride} must be between 1 and the backbone stride "
            f"{in_stride}"
        )
    n = math.log2(in_stride / heatmap_stride)
    if n != int(n):
        raise ModelError(
            f"backbone stride {in_stride} / heatmap_stride {heatmap_stride} must be a power "
            "of two (e.g. heatmap_stride 4 with backbone stride 8, 16 or 32)"
        )
    return int(n)


class UpsampleNeck(nn.Sequential):
    """(B, in_channels, H/s, W/s) -> (B, width, H/hs, W/hs), s = in_stride, hs = heatmap_stride."""

    def __init__(self, in_channels: int, in_stride: int, cfg: NeckConfig):
        n = num_upsamples(in_stride, cfg.heatmap_stride)
        layers: list[nn.Module] = []
        c = in_channels
        if cfg.neck not in ("deconv", "separable"):
            raise ModelError(f"unknown neck {cfg.neck!r}; choose 'deconv' or 'separable'")
        if cfg.neck == "separable":
            if n:
                raise ModelError("neck 'separable' works at the backbone's own stride: set "
                                 f"heatmap_stride to {in_stride}")
            layers += [nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
                       nn.Conv2d(c, cfg.width, 1), nn.ReLU(inplace=True)]
            n = -1  # nothing more
        if n == 0:
            layers += [nn.Conv2d(c, cfg.width, 3, padding=1, bias=False)]
            layers += [nn.BatchNorm2d(cfg.width), nn.ReLU(inplace=True)]
        for _ in range(max(n, 0)):
            layers += [
                nn.ConvTranspose2d(c, cfg.width, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cfg.width),
                nn.ReLU(inplace=True),
            ]
            c = cfg.width
        super().__init__(*layers)
        self.out_channels = cfg.width
        self.out_stride = cfg.heatmap_stride
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)


def out_stride(cfg: NeckConfig) -> int:
    """Input pixels per output-map pixel: ``heatmap_stride`` halved ``refine`` times."""
    if cfg.refine < 0 or cfg.heatmap_stride % (2 ** cfg.refine):
        raise ModelError(f"refine {cfg.refine} must be >= 0 and leave a whole output stride "
                         f"(heatmap_stride {cfg.heatmap_stride} / 2**refine)")
    return cfg.heatmap_stride // (2 ** cfg.refine)


class RefineUp(nn.Module):
    """``stages`` x2 refinements of a head's logits from its neck features (see
    ``NeckConfig.refine``): ``forward(feats, logits)`` -> logits at 2**stages x the size.
    Upsampling is bilinear with half-pixel centres (align_corners=False), the same
    pixel-centre convention as the transposed convs (module docstring)."""

    def __init__(self, width: int, num_joints: int, stages: int):
        super().__init__()
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1) for _ in range(stages))
        self.outs = nn.ModuleList(nn.Conv2d(width, num_joints, 1) for _ in range(stages))
        for conv in self.outs:  # zero: the start is the coarse maps, upsampled
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, feats, logits):
        import torch.nn.functional as F

        for up, out in zip(self.ups, self.outs):
            feats = F.relu(up(feats))
            logits = F.interpolate(logits, scale_factor=2.0, mode="bilinear",
                                   align_corners=False) + out(feats)
        return logits


def head_maps(neck: nn.Module, final: nn.Module, refine: nn.Module | None, feats):
    """Backbone features -> a head's raw maps: ``final(neck(feats))``, refined to a finer
    output stride where the head has a :class:`RefineUp`."""
    f = neck(feats)
    x = final(f)
    return refine(f, x) if refine is not None else x


def check_soft_weight(w: float) -> None:
    """``soft_weight`` mixes the label and teacher-map targets: it must lie in [0, 1]."""
    if not 0.0 <= float(w) <= 1.0:
        raise ModelError(f"head setting soft_weight must be in [0, 1] (0 = labels only, "
                         f"1 = the teacher's maps only), got {w}")


# The teacher "sees" a joint where its map peaks at MoveNet's own "labelled" threshold or more:
# there the teacher's map is a target even when nobody labelled the joint.
SOFT_MIN_PEAK = 0.3


def teacher_sees(maps, mask):
    """(B, K) bool: joints whose teacher map (B, K, h, w) peaks at >= SOFT_MIN_PEAK, for
    people that have maps (``mask`` (B,) > 0)."""
    return (maps.amax(dim=(-2, -1)) >= SOFT_MIN_PEAK) & (mask[:, None] > 0)


def teacher_targets(batch: dict, size: tuple[int, int]):
    """Dense teacher targets of a batch (:mod:`edgepose.data.teacher_maps`) on a head's
    (h, w) grid: (maps (B, K, h, w) in [0, 1], mask (B,)), or None if the batch has none.
    Maps stored at another stride are resampled bilinearly."""
    maps = batch.get("teacher_maps")
    if maps is None:
        return None
    maps = maps.float()
    if tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)
    return maps, batch["teacher_mask"].float()


def output_size(input_size: tuple[int, int], in_stride: int, heatmap_stride: int) -> tuple[int, int]:
    """Heatmap (h, w) for an input (H, W); the input must be a multiple of ``in_stride``."""
    h, w = (int(v) for v in input_size)
    if h % in_stride or w % in_stride:
        raise ModelError(
            f"input size {h}x{w} must be a multiple of the backbone stride {in_stride} "
            "so heatmap pixels line up with input pixels"
        )
    return h // heatmap_stride, w // heatmap_stride


def make_head_conv(width: int, num_joints: int) -> nn.Conv2d:
    """The 1x1 conv from neck features to one map per joint, SimpleBaseline init."""
    conv = nn.Conv2d(width, num_joints, 1)
    nn.init.normal_(conv.weight, std=0.001)
    nn.init.zeros_(conv.bias)
    return conv


def movenet_heatmap_layers(in_channels: int, in_stride: int,
                           num_joints: int) -> tuple[UpsampleNeck, nn.Conv2d]:
    """Layers shaped like MoveNet's keypoint-heatmap head (``kpt_heatmap_0``): a separable
    layer of width 96 at the trunk's stride and a 1x1 to one logit map per joint, ready for
    :func:`init_from_movenet`."""
    neck = UpsampleNeck(in_channels, in_stride,
                        NeckConfig(heatmap_stride=in_stride, width=96, neck="separable"))
    return neck, make_head_conv(neck.out_channels, num_joints)


def load_movenet_heatmap(neck: nn.Module, final: nn.Conv2d, state: dict,
                         scale: float = 1.0) -> bool:
    """Start a separable neck + 1x1 ``final`` from MoveNet's ``kpt_heatmap_0`` (its tensors
    ``head.heatmap.*`` in an imported MoveNet file), its logits multiplied by ``scale``.
    Returns False where shapes differ (another neck or width), leaving the layers as they
    were."""
    pairs = {"0.weight": "head.heatmap.0.depthwise.weight",
             "1.weight": "head.heatmap.0.pointwise.weight",
             "1.bias": "head.heatmap.0.pointwise.bias"}
    own = neck.state_dict()
    new = {k: state.get(v) for k, v in pairs.items()}
    fin = {"weight": state.get("head.heatmap.1.weight"), "bias": state.get("head.heatmap.1.bias")}
    if any(v is None or k not in own or own[k].shape != v.shape for k, v in new.items()) or \
            any(v is None or getattr(final, k).shape != v.shape for k, v in fin.items()):
        return False
    neck.load_state_dict({**own, **new})
    final.load_state_dict({k: v * scale for k, v in fin.items()})
    return True


def init_from_movenet(neck: nn.Module, final: nn.Conv2d, path, scale: float = 1.0) -> str:
    """A head's start from the imported MoveNet file ``path``: its separable ``neck`` and
    1x1 ``final`` take MoveNet's keypoint-heatmap head (:func:`load_movenet_heatmap`, logits
    x ``scale``) when ``path`` is one and the shapes fit. Returns what was done ("" =
    nothing: another weights file, neck or width)."""
    state = movenet_head_tensors(path)
    if state and load_movenet_heatmap(neck, final, state, scale=scale):
        return "movenet kpt_heatmap_0" + (f" x{scale:g}" if scale != 1.0 else "")
    return ""


def movenet_head_tensors(path) -> dict:
    """The ``head.*`` tensors of an imported MoveNet .safetensors file ({} for any other
    weights file, e.g. an ImageNet backbone)."""
    from pathlib import Path

    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith("head.heatmap.")}

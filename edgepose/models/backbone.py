"""Backbones: one timm feature map at a chosen stride.

``build_backbone(name, stride)`` asks timm for ``features_only=True`` and reads
``feature_info.reduction()`` / ``.channels()`` to pick the level whose stride matches, so
no channel count or layer name is hard-coded here. The result is a :class:`Backbone`
with ``out_channels`` and ``stride`` attributes whose ``forward(x)`` returns one tensor
(B, C, H / stride, W / stride).

Two details matter for small, fast models:

* timm's ``features_only`` drops the unused later stages of a ResNet, but **not** those of
  MobileNet/EfficientNet-style nets (``blocks`` stays whole, so parameters and FLOPs stay
  those of the full network). :func:`_truncate_blocks` cuts ``blocks`` after the last
  one we read from.
* ``"<name>+dilated"`` (e.g. ``resnet18+dilated``) keeps the full depth but replaces the
  later strides by dilation (timm ``output_stride=``), so a stride-8 feature map still
  sees the deepest layers. Only for architectures timm supports this on (ResNets,
  MobileNet/EfficientNet families).

HRNet is used through its raw branch outputs (``feature_location=''``): the branch at
the requested stride, without the classification "incre" blocks. All of its stages always
run, so a coarser stride does not make it cheaper.
"""

from __future__ import annotations

import contextlib

import difflib
import logging
from pathlib import Path

import torch
from torch import nn

from edgepose.errors import ModelError

log = logging.getLogger(__name__)

# Backbones that the tests build at every stride; others from timm usually work too.
TESTED_BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenetv3_large_100",
    "mobilenetv3_small_100",
    "hrnet_w32",
)
SUPPORTED_STRIDES = (4, 8, 16, 32)
# MoveNet's pose-trained MobileNetV2 + FPN (edgepose/models/movenet.py), not timm models
MOVENET_TRUNKS = ("movenet_lightning", "movenet_thunder", "movenet_lightning_bn",
                  "movenet_thunder_bn")
DILATED_SUFFIX = "+dilated"


class Backbone(nn.Module):
    """A timm feature extractor reduced to one output at ``stride``.

    Attributes:
        out_channels: channels C of the output feature map.
        stride: input pixels per feature pixel (4, 8, 16 or 32).
        name: the backbone name it was built from (with ``+dilated`` if so).
    """

    def __init__(self, body: nn.Module, out_channels: int, stride: int, name: str):
        super().__init__()
        self.body = body
        self.out_channels = int(out_channels)
        self.stride = int(stride)
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> (B, C, H / stride, W / stride) features."""
        feats = self.body(x)
        return feats if torch.is_tensor(feats) else feats[-1]


def parse_name(name: str) -> tuple[str, bool]:
    """``"resnet18+dilated"`` -> ``("resnet18", True)``; ``"resnet18"`` -> ``(.., False)``."""
    if name.endswith(DILATED_SUFFIX):
        return name[: -len(DILATED_SUFFIX)], True
    return name, False


def _check_name(arch: str) -> None:
    import timm

    if timm.is_model(arch):
        return
    close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
    hint = f"did you mean {close}? " if close else ""
    raise ModelError(
        f"unknown backbone {arch!r}; {hint}tested backbones are {list(TESTED_BACKBONES)} "
        "(any timm model name with features_only support may work)"
    )


def _timm_kwargs(arch: str, dilated: bool, stride: int) -> dict:
    kwargs: dict = {"features_only": True}
    if arch.split(".")[0].startswith("hrnet"):
        if dilated:
            raise ModelError(f"backbone {arch!r} does not support '+dilated'; drop the suffix")
        kwargs["feature_location"] = ""
    if dilated:
        kwargs["output_stride"] = stride
    return kwargs


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can the Hugging Face hub (``$HF_ENDPOINT`` or huggingface.co) be reached at all?
    Offline, huggingface_hub retries for about a minute before it gives up; one TCP
    connect with a short timeout tells us first."""
    import os
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_offline():
    """huggingface_hub's offline mode for one call (cache only, no retries)."""
    import os

    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - timm depends on it
        yield
        return
    old_env, old_flag = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], constants.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old_flag
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _create(arch: str, pretrained: bool, **kwargs) -> nn.Module:
    import timm

    offline = pretrained and not hub_reachable()
    try:
        with _hub_offline() if offline else contextlib.nullcontext():
            return timm.create_model(arch, pretrained=pretrained, **kwargs)
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - timm raises many types for these
        if pretrained:
            why = ("the Hugging Face hub is unreachable and they are not in the local cache"
                   if offline else f"{_first_line(e)}")
            raise ModelError(
                f"could not get timm's pretrained weights for {arch!r} ({why}); connect to "
                "the internet, or set model.pretrained to a local weights file ('edgepose "
                "weights import') or to false"
            ) from None
        raise ModelError(
            f"backbone {arch!r} cannot be built as a feature extractor "
            f"({_first_line(e)}); pick another, e.g. {list(TESTED_BACKBONES)}"
        ) from None


def _probe(arch: str, kwargs: dict) -> nn.Module:
    """The full feature extractor, built on the meta device when possible: we only read
    its ``feature_info``, so allocating and initialising weights would be wasted time."""
    try:
        with torch.device("meta"):
            return _create(arch, False, **kwargs)
    except ModelError:
        return _create(arch, False, **kwargs)


def _pick_level(body: nn.Module, stride: int, arch: str, dilated: bool) -> int:
    reductions = list(body.feature_info.reduction())
    if dilated:
        # With output_stride every level past `stride` reports (at most) `stride`:
        # take the deepest one.
        return len(reductions) - 1
    if stride not in reductions:
        raise ModelError(
            f"backbone {arch!r} has no feature map at stride {stride}; "
            f"available strides are {sorted(set(reductions))}"
        )
    return reductions.index(stride)


def _truncate_blocks(body: nn.Module) -> None:
    """Drop the MobileNet/EfficientNet blocks after the last feature we read (in place).

    timm's ``MobileNetV3Features`` / ``EfficientNetFeatures`` run every block and keep
    ``_stage_out_idx`` = {number of blocks run before an output: its level}.
    """
    idx = getattr(body, "_stage_out_idx", None)
    blocks = getattr(body, "blocks", None)
    if not idx or not isinstance(blocks, nn.Sequential):
        return
    if getattr(body, "feature_hooks", None) is not None:
        return  # hook-based extraction: keep the model as timm built it
    keep = max(idx)
    if keep < len(blocks):
        body.blocks = blocks[:keep]


def build_backbone(
    name: str, stride: int = 8, pretrained: bool | str = False, dilated: bool = False
) -> Backbone:
    """Build ``name`` (a timm model name, optionally ``+dilated``) cut at ``stride``.

    Args:
        name: timm architecture, e.g. ``resnet18``, ``mobilenetv3_large_100``,
            ``hrnet_w32``; a ``+dilated`` suffix is the same as ``dilated=True``.
        stride: output stride in input pixels: 4, 8, 16 or 32.
        pretrained: False (random init), True (timm's weights via the Hugging Face cache)
            or the path of a local ``.pth``/``.pt``/``.safetensors`` state dict.
        dilated: keep the full depth at ``stride`` using dilated convolutions.
    """
    arch, from_suffix = parse_name(name)
    dilated = dilated or from_suffix
    if stride not in SUPPORTED_STRIDES:
        raise ModelError(f"backbone stride {stride} is not supported; use one of {SUPPORTED_STRIDES}")
    if not isinstance(pretrained, (bool, str, Path)):
        raise ModelError(f"pretrained must be True/False or a weights file, not {pretrained!r}")
    if dilated and stride not in (8, 16):
        raise ModelError(f"'+dilated' works at stride 8 or 16, not {stride}")
    if arch in MOVENET_TRUNKS:
        return _movenet_backbone(arch, stride, pretrained, dilated)
    _check_name(arch)
    if stride == 4 and not arch.startswith("hrnet"):
        # a stride-4 cut of a classification backbone is its stem + first stage only
        # (resnet18: 0.2M of 11M parameters): too shallow to find a person
        raise ModelError(f"backbone {arch!r} at stride 4 would keep only its stem and first "
                         "stage (too shallow to find people); use stride 8 or 16 - the head "
                         "upsamples to its own heatmap stride (head_cfg.heatmap_stride) - or "
                         "an HRNet, whose stride-4 output is its full network")
    kwargs = _timm_kwargs(arch, dilated, stride)
    weights_file = None if isinstance(pretrained, bool) else Path(pretrained)
    if weights_file is not None and not weights_file.is_file():
        raise ModelError(f"{weights_file}: backbone weights file not found")
    level = _pick_level(_probe(arch, kwargs), stride, arch, dilated)
    body = _create(arch, pretrained is True, out_indices=(level,), **kwargs)
    _truncate_blocks(body)
    if body.feature_info.reduction()[-1] != stride:
        raise ModelError(
            f"backbone {arch!r} cannot give a dilated feature map at stride {stride}; "
            "try stride 8 or 16, or drop '+dilated'"
        )
    channels = body.feature_info.channels()[-1]
    label = arch + (DILATED_SUFFIX if dilated else "")
    if weights_file is not None:
        load_weights_file(body, weights_file, label)
    return Backbone(body, channels, stride, label)


def _movenet_backbone(arch: str, stride: int, pretrained, dilated: bool) -> Backbone:
    """MoveNet's pose-trained MobileNetV2 + FPN (stride 4, 24 channels): no timm model, and
    its weights come only from a local file (``edgepose weights import movenet-lightning``)."""
    from edgepose.models.movenet import BN_SUFFIX, TRUNKS, MoveNetTrunk

    if stride != 4 or dilated:
        raise ModelError(f"backbone {arch!r} is a MoveNet trunk + FPN: its output is at "
                         f"stride 4 (set model.stride: 4), not {stride}"
                         + (" and it has no '+dilated' form" if dilated else ""))
    if pretrained is True:
        raise ModelError(f"{arch!r} has no hub weights; import them with 'edgepose weights "
                         f"import {arch.replace('_', '-')}' and set model.pretrained to that file")
    base = arch.removesuffix(BN_SUFFIX)
    bn = arch != base
    body = MoveNetTrunk(TRUNKS[base], batchnorm=bn)
    if not isinstance(pretrained, bool):
        path = Path(pretrained)
        if not path.is_file():
            raise ModelError(f"{path}: backbone weights file not found")
        if bn:  # MoveNet's folded weights, then their BatchNorm back (calibrated by train)
            folded = MoveNetTrunk(TRUNKS[base])
            load_weights_file(folded, path, base)
            body.unfold_from(folded)
        else:
            load_weights_file(body, path, arch)
    return Backbone(body, body.out_channels, body.stride, arch)


# ----------------------------------------------------------------------------- local weights


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file; unwrap common wrappers."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt zip, pickle, header...
        raise ModelError(
            f"{path}: not a readable weights file ({type(e).__name__}: {str(e)[:120]}); "
            "expected a PyTorch state dict (.pth/.pt) or a .safetensors file"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path}: holds no state dict of tensors")
    out = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            continue
        for prefix in ("module.", "backbone.body.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix):]
                break
        out[k] = v
    return out


def load_weights_file(body: nn.Module, path: Path, label: str) -> dict[str, int]:
    """Load matching tensors from ``path`` into ``body`` (non-strict); returns counts.

    Accepts a timm/torchvision-style classification state dict (its head and the stages
    we dropped are "unexpected" and ignored), an edgepose backbone state dict, and
    ``module.``-prefixed DDP dicts. Raises :class:`ModelError` if nothing matches.
    """
    state = _read_state_dict(path)
    own = body.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    wrong_shape = [k for k in state if k in own and own[k].shape != state[k].shape]
    missing = [k for k in own if k not in matched]
    unexpected = [k for k in state if k not in own]
    if not matched:
        raise ModelError(
            f"{path}: none of its {len(state)} tensors fit backbone {label!r}; "
            "is it a weights file for this architecture?"
        )
    learned = [k for k in own if not k.endswith("num_batches_tracked")]
    fit = sum(k in matched for k in learned)
    if fit < len(learned) / 2:
        # a few generic names (bn1.weight, ...) can match by chance; most must
        raise ModelError(
            f"{path}: only {fit} of backbone {label!r}'s {len(learned)} weight tensors are "
            "in it (none of its other tensors fit); is it a weights file for another "
            "architecture?"
        )
    body.load_state_dict(matched, strict=False)
    counts = {
        "loaded": len(matched),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "wrong_shape": len(wrong_shape),
    }
    msg = (
        f"{path.name}: loaded {len(matched)}/{len(own)} backbone tensors "
        f"({len(unexpected)} unused, {len(wrong_shape)} with the wrong shape)"
    )
    if missing or wrong_shape:
        log.warning("%s; %d stay randomly initialised, e.g. %s", msg, len(missing), missing[:3])
    else:
        log.info(msg)
    return counts

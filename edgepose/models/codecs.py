"""Gaussian heatmap codec: keypoints <-> heatmaps, paired and configured once.

``encode`` turns keypoints in *input pixels* into training targets; ``decode`` turns a
network's heatmaps back into keypoints in input pixels. Both go through
``edgepose.coords.input_to_heatmap`` / ``heatmap_to_input``, so the head, the dataset and
the metrics share one coordinate convention (pixel centres on integers). A round-trip test
(encode -> decode -> compare) keeps them honest.

* encode: an unnormalised Gaussian with peak 1 centred on the *sub-pixel* keypoint
  (no rounding to the nearest heatmap pixel), ``sigma`` in heatmap pixels; the weight
  of a joint is 0 if it is not visible or its centre lies outside the heatmap.
* decode: argmax, then a quarter-pixel shift towards the higher of the two neighbours in
  x and in y (SimpleBaseline). Worst-case error of a clean Gaussian is 0.25 heatmap px per
  axis (argmax is within 0.5, the shift halves that). Score = peak value clamped to [0, 1].

The decoder is written for ONNX export: static shapes, and only argmax / gather / slice /
concat / sign / arithmetic. It gathers pre-computed neighbour differences instead of
indexing neighbours, which would need data-dependent slicing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edgepose.coords import heatmap_to_input, input_to_heatmap


@dataclass
class GaussianHeatmapCodec:
    """Gaussian heatmaps of ``heatmap_size`` (h, w) for an input of ``input_size`` (H, W).

    ``sigma`` is in heatmap pixels. ``shift`` is the sub-pixel step towards the higher
    neighbour (0.25 = SimpleBaseline; 0 = plain argmax).
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float = 2.0
    shift: float = 0.25

    @property
    def stride_xy(self) -> tuple[float, float]:
        """Input pixels per heatmap pixel in x and in y."""
        return (
            self.input_size[1] / self.heatmap_size[1],
            self.input_size[0] / self.heatmap_size[0],
        )

    def encode(
        self, keypoints: torch.Tensor, visible: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints -> Gaussian targets.

        Args:
            keypoints: (B, K, 2) xy in input pixels.
            visible: (B, K), 1 = labelled and inside the crop.

        Returns:
            targets (B, K, h, w) in [0, 1], peak 1 at each keypoint;
            weights (B, K) float, 0 for invisible joints and joints whose centre is
            outside the heatmap.
        """
        h, w = self.heatmap_size
        sx, sy = self.stride_xy
        kp = input_to_heatmap(keypoints.float(), sx, sy)  # (B, K, 2) heatmap px
        xs = torch.arange(w, dtype=kp.dtype, device=kp.device)
        ys = torch.arange(h, dtype=kp.dtype, device=kp.device)
        dx2 = (xs - kp[..., 0:1]) ** 2  # (B, K, w)
        dy2 = (ys - kp[..., 1:2]) ** 2  # (B, K, h)
        var2 = 2.0 * float(self.sigma) ** 2
        targets = torch.exp(-(dy2[..., :, None] + dx2[..., None, :]) / var2)
        inside = (
            (kp[..., 0] >= -0.5) & (kp[..., 0] <= w - 0.5)
            & (kp[..., 1] >= -0.5) & (kp[..., 1] <= h - 0.5)
        )
        weights = (visible > 0) & inside
        return targets, weights.to(kp.dtype)

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps -> keypoints.

        Args:
            heatmaps: (B, K, h, w), any real values.

        Returns:
            coords (B, K, 2) xy in input pixels; scores (B, K) = peak value clamped to
            [0, 1].
        """
        xy_hm, peak = decode_argmax_shift(heatmaps, self.shift)
        sx, sy = self.stride_xy
        return heatmap_to_input(xy_hm, sx, sy), peak.clamp(0.0, 1.0)


def neighbour_differences(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, h, w) -> (dx, dy), each (B, K, h, w): right-minus-left and
    below-minus-above neighbour value at every pixel, 0 on the border pixels (where
    SimpleBaseline does not shift)."""
    # Zero borders by concatenation: F.pad exports a reversed (step -1) Slice that
    # the exporter cannot constant-fold.
    zx = torch.zeros_like(heatmaps[..., :, :1])
    zy = torch.zeros_like(heatmaps[..., :1, :])
    dx = torch.cat([zx, heatmaps[..., :, 2:] - heatmaps[..., :, :-2], zx], dim=-1)
    dy = torch.cat([zy, heatmaps[..., 2:, :] - heatmaps[..., :-2, :], zy], dim=-2)
    return dx, dy


def decode_argmax_shift(
    heatmaps: torch.Tensor, shift: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax + ``shift`` px towards the higher neighbour.

    Args:
        heatmaps: (B, K, h, w).

    Returns:
        xy (B, K, 2) in *heatmap* pixels (float), peak values (B, K).
    """
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, h * w)
    idx = flat.argmax(dim=-1, keepdim=True)  # (B, K, 1) int64
    peak = torch.gather(flat, -1, idx).squeeze(-1)
    # Row/column in integers: exact even if an engine runs the float part in FP16 (where
    # integers above 2048 are not exact). "trunc" = floor for these non-negative indices
    # and exports as one integer Div ("floor" adds sign-fixing Mod/Xor/Where nodes).
    yi = torch.div(idx, w, rounding_mode="trunc")
    x = (idx - yi * w).to(heatmaps.dtype)
    y = yi.to(heatmaps.dtype)
    if shift:
        dx, dy = neighbour_differences(heatmaps)
        x = x + shift * torch.sign(torch.gather(dx.reshape(b, k, h * w), -1, idx))
        y = y + shift * torch.sign(torch.gather(dy.reshape(b, k, h * w), -1, idx))
    return torch.cat([x, y], dim=-1), peak

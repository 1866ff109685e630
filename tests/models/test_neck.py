"""The shared upsampling neck and head-setting validation."""

from __future__ import annotations

import pytest
import torch

from edgepose.errors import ModelError
from edgepose.models.neck import (
    NeckConfig,
    RefineUp,
    UpsampleNeck,
    num_upsamples,
    out_stride,
    output_size,
)


@pytest.mark.parametrize(
    "in_stride,hm_stride,deconvs", [(8, 4, 1), (16, 4, 2), (32, 4, 3), (8, 8, 0), (32, 8, 2)]
)
def test_neck_upsamples_to_heatmap_stride(in_stride, hm_stride, deconvs):
    cfg = NeckConfig(heatmap_stride=hm_stride, width=16)
    neck = UpsampleNeck(24, in_stride, cfg)
    n_deconv = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in neck.modules())
    assert n_deconv == deconvs == num_upsamples(in_stride, hm_stride)
    y = neck(torch.randn(2, 24, 64 // in_stride, 64 // in_stride))
    assert y.shape == (2, 16, 64 // hm_stride, 64 // hm_stride)
    assert output_size((64, 64), in_stride, hm_stride) == (64 // hm_stride, 64 // hm_stride)


def test_neck_rejects_bad_strides():
    with pytest.raises(ModelError, match="power"):
        num_upsamples(8, 3)
    with pytest.raises(ModelError, match="between"):
        num_upsamples(8, 16)
    with pytest.raises(ModelError, match="multiple of the backbone stride"):
        output_size((60, 64), 8, 4)


@pytest.mark.parametrize("stages", [1, 2])
def test_refine_starts_as_the_coarse_maps_upsampled_and_learns_from_there(stages):
    torch.manual_seed(0)
    refine = RefineUp(8, 3, stages)
    feats, logits = torch.randn(2, 8, 4, 4), torch.randn(2, 3, 4, 4)
    out = refine(feats, logits)
    assert out.shape == (2, 3, 4 * 2 ** stages, 4 * 2 ** stages)
    want = logits
    for _ in range(stages):  # x2 per stage, as the export runs it
        want = torch.nn.functional.interpolate(want, scale_factor=2.0, mode="bilinear",
                                               align_corners=False)
    torch.testing.assert_close(out, want)
    # half-pixel centres: a constant map stays exactly constant (no border shift)
    flat = refine(feats, torch.full((1, 3, 4, 4), 2.5).expand(2, 3, 4, 4))
    torch.testing.assert_close(flat, torch.full_like(flat, 2.5))
    out.sum().backward()
    assert refine.outs[0].weight.grad.abs().sum() > 0  # the zero start is not a dead end


def test_out_stride_halves_per_refine_stage_and_rejects_fractions():
    assert out_stride(NeckConfig(heatmap_stride=4, refine=1)) == 2
    assert out_stride(NeckConfig(heatmap_stride=4, refine=2)) == 1
    with pytest.raises(ModelError, match="refine"):
        out_stride(NeckConfig(heatmap_stride=4, refine=3))
    with pytest.raises(ModelError, match="refine"):
        out_stride(NeckConfig(heatmap_stride=4, refine=-1))

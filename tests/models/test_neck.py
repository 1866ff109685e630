"""The shared upsampling neck and head-setting validation."""

from __future__ import annotations

import pytest
import torch

from edgepose.errors import ModelError
from edgepose.models.neck import NeckConfig, UpsampleNeck, num_upsamples, output_size


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

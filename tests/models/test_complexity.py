"""Parameter and FLOP counts against hand-computed values."""

from __future__ import annotations

from torch import nn

from edgepose.models import build_model
from edgepose.models.complexity import count_flops, count_parameters, measure
from model_helpers import tiny_meta


def test_counts_of_a_hand_sized_net():
    # conv 3->8 k3 on 16x16 (padding 1): MACs = 16*16*8*3*9 = 55296;
    # deconv 8->4 k4 s2 from 16x16: MACs = 16*16*4*8*16 = 131072 (per input pixel).
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False),
    )
    assert count_parameters(net) == 8 * 3 * 9 + 8 * 4 * 16
    gflops = count_flops(net, (16, 16))
    assert abs(gflops * 1e9 - 2 * (55296 + 131072)) < 1, gflops


def test_pose_model_counts_include_the_head():
    model = build_model(tiny_meta("dsnt", width=32))
    c = measure(model, (64, 64))
    assert c.params == count_parameters(model) == c.backbone_params + c.head_params
    assert c.head_gflops > 0 and c.backbone_gflops > 0
    assert abs(c.gflops - (c.backbone_gflops + c.head_gflops)) < 1e-9
    # head by hand: deconv 128->32 k4 on 8x8 + 1x1 conv 32->17 on 16x16
    head_macs = 8 * 8 * 32 * 128 * 16 + 16 * 16 * 17 * 32
    assert abs(c.head_gflops * 1e9 - 2 * head_macs) < 1, c.head_gflops
    assert abs(c.gmacs * 2 - c.gflops) < 1e-12
    assert "GFLOPs" in c.summary()


def test_extra_flops_hook_is_added():
    class Analytic(nn.Module):
        def forward(self, x):
            return x.sum()

        def extra_flops(self, input_size):
            return 1e9 * input_size[0] / 64

    net = nn.Sequential(Analytic())
    assert count_flops(net, (64, 64)) == 1.0
    assert count_flops(net, (128, 64)) == 2.0

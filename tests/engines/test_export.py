"""Checkpoint -> ONNX for every head: parity with PyTorch, metadata, options."""

import numpy as np
import onnx
import pytest
import torch

from edgepose.errors import EngineError
from edgepose.engines import export as ex
from edgepose.engines.backend import load_backend
from edgepose.engines.meta_io import read_meta

from engine_helpers import HEADS, INPUT_HW, make_checkpoint

TOL_PX = 1e-3


@pytest.mark.parametrize("head", HEADS)
def test_export_parity_reported(exported, head):
    _, onnx_path, _, report = exported(head)
    kinds = {r.inputs for r in report.parity}
    assert kinds == {"random", "images"}, f"parity must run on both input kinds, got {kinds}"
    for r in report.parity:
        assert r.max_coord_px <= TOL_PX, f"{head} {r.inputs}: coords off by {r.max_coord_px}"
    assert onnx_path.is_file()


@pytest.mark.parametrize("head", HEADS)
def test_graph_io_contract(exported, head):
    _, onnx_path, meta, _ = exported(head)
    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["coords", "scores"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch", "batch dimension must be dynamic by default"
    assert [d.dim_value for d in dims[1:]] == [3, *INPUT_HW]
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17


@pytest.mark.parametrize("head", HEADS)
def test_torch_vs_onnxruntime_backends(exported, head):
    """The user-facing path: load_backend(.pt) vs load_backend(.onnx), random + images."""
    ckpt, onnx_path, meta, _ = exported(head)
    batches = {"random": ex.random_inputs(meta, 3, seed=5),
               "images": ex.synthetic_images(meta, 3, seed=6)}
    with load_backend(ckpt, device="cpu") as pt, load_backend(onnx_path, threads=1) as ort:
        assert pt.name == "torch-cpu" and ort.name == "onnxruntime-cpu"
        for kind, x in batches.items():
            a, b = pt(x), ort(x)
            assert a["coords"].shape == (3, meta.num_joints, 2)
            assert b["scores"].shape == (3, meta.num_joints)
            d = np.abs(a["coords"] - b["coords"]).max()
            assert d <= TOL_PX, f"{head} {kind}: coords differ by {d} px"
            assert np.abs(a["scores"] - b["scores"]).max() <= 1e-3
            h, w = meta.input_size
            c = b["coords"]
            assert np.all((c[..., 0] > -1) & (c[..., 0] < w) & (c[..., 1] > -1) & (c[..., 1] < h)), \
                "decoded coords must lie inside the input (pixels, not normalised units)"


@pytest.mark.parametrize("head", HEADS)
def test_metadata_survives_checkpoint_to_onnx_to_backend(exported, head):
    ckpt, onnx_path, meta, _ = exported(head)
    got = read_meta(onnx_path)
    assert got.to_dict() == meta.to_dict(), "ONNX metadata_props must hold the checkpoint meta"
    with load_backend(onnx_path) as b:
        assert b.meta.to_dict() == meta.to_dict()
        assert b.precision == "fp32"
        assert b.input_shape == (-1, 3, *INPUT_HW)


def test_static_batch_and_simplify(tmp_path):
    head = HEADS[0]
    ckpt = tmp_path / "m.pt"
    make_checkpoint(ckpt, head, seed=1)
    out = tmp_path / "static.onnx"
    rep = ex.export_checkpoint(ckpt, out, ex.ExportOptions(static_batch=2, simplify=True),
                               progress=False)
    assert rep.simplified and len(rep.parity) == 4, "parity must be re-checked after simplify"
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 2
    with load_backend(out) as b:
        assert b.input_shape == (2, 3, *INPUT_HW)
        assert b.meta.head == head, "simplify must keep metadata_props"
        # any batch size: chunks of 2, a short one padded, each crop as if run alone
        x = np.random.default_rng(0).normal(size=(5, 3, *INPUT_HW)).astype(np.float32)
        alone = np.concatenate([b(x[i:i + 1])["coords"] for i in range(5)])
        for n in (1, 2, 3, 5):
            np.testing.assert_allclose(b(x[:n])["coords"], alone[:n], atol=1e-4)


def test_parity_failure_is_loud(tmp_path, exported):
    """An ONNX compared with a different model must fail with EngineError naming the joint."""
    head = HEADS[0]
    _, onnx_path, meta, _ = exported(head)
    other, _ = make_checkpoint(tmp_path / "other.pt", head, seed=123)
    with pytest.raises(EngineError, match=r"disagrees with PyTorch.*joint \d+"):
        ex.check_parity(onnx_path, other, meta, ex.ExportOptions())


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    head = HEADS[0]
    ckpt = tmp_path / "m.pt"
    make_checkpoint(ckpt, head)
    out = tmp_path / "out.onnx"

    def bad_parity(*a, **k):
        raise EngineError("forced")

    monkeypatch.setattr(ex, "check_parity", bad_parity)
    with pytest.raises(EngineError, match="forced"):
        ex.export_checkpoint(ckpt, out, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".*onnx")), "no half-written ONNX"


@pytest.mark.parametrize("spec,expected", [
    ("dense:64", {"mode": "dense", "resolution": 64}),
    ("progressive:32,4,2,1", {"mode": "progressive", "coarse": 32, "r": 4, "overlap": 2,
                              "steps": 1}),
    ("progressive:16", {"mode": "progressive", "coarse": 16}),
])
def test_parse_decoder_spec(spec, expected):
    assert ex.parse_decoder_spec(spec) == expected


@pytest.mark.parametrize("spec", ["dense", "dense:x", "sparse:3", "progressive:1,2,3,4,5"])
def test_parse_decoder_spec_rejects(spec):
    with pytest.raises(EngineError, match="cannot read decoder"):
        ex.parse_decoder_spec(spec)


@pytest.mark.skipif("nerpe" not in HEADS, reason="NerPE head not available")
def test_decoder_override_nerpe_dense(tmp_path):
    ckpt = tmp_path / "n.pt"
    make_checkpoint(ckpt, "nerpe")
    out = tmp_path / "dense.onnx"
    rep = ex.export_checkpoint(ckpt, out, ex.ExportOptions(decoder={"mode": "dense",
                                                                    "resolution": 16}),
                               progress=False)
    assert read_meta(out).decoder["mode"] == "dense"
    assert all(r.max_coord_px <= TOL_PX for r in rep.parity)


def test_opset_too_old():
    with pytest.raises(EngineError, match="opset 13 is too old"):
        ex.ExportOptions(opset=13)


def test_fp16_onnx_keeps_float32_io(tmp_path, exported):
    head = HEADS[0]
    _, onnx_path, meta, _ = exported(head)
    half = tmp_path / "half.onnx"
    ex.to_fp16_onnx(onnx_path, half)
    proto = onnx.load(str(half))
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert proto.graph.input[0].type.tensor_type.elem_type == f32
    assert all(o.type.tensor_type.elem_type == f32 for o in proto.graph.output)
    assert any(t.data_type == f16 for t in proto.graph.initializer), "weights must be fp16"
    assert read_meta(half).precision == "fp16"
    with load_backend(half) as b:
        assert b.precision == "fp16"
        x = ex.synthetic_images(meta, 2)
        out = b(x)
        assert out["coords"].dtype == np.float32 and np.isfinite(out["coords"]).all()
        assert np.abs(out["scores"] - load_backend(onnx_path)(x)["scores"]).max() < 0.05, \
            "fp16 scores should stay close to fp32"

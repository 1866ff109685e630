"""One file per model: an exported ONNX gives back the checkpoint it came from
(edgepose.engines.onnx_weights), weights bit for bit and the training recipe.

It holds for models on the MoveNet trunk (every bundled and shipped model): no BatchNorm, so
the exporter keeps every tensor under its name. A BatchNorm backbone is folded into its
convolutions on export; there the file cannot give its checkpoint back, and says so."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgepose.checkpoint import load_checkpoint, save_checkpoint
from edgepose.engines.export import ExportOptions, export_checkpoint
from edgepose.engines.onnx_weights import (
    RECIPE_KEY,
    checkpoint_from_onnx,
    derived_checkpoint,
    read_recipe,
)
from edgepose.errors import EngineError
from edgepose.models import build_model
from meta_helpers import tiny_meta  # no default neck width: each head gets its own

# the shipped models' head layouts: MoveNet-shaped heads, no BatchNorm anywhere
SHIPPED = {"heatmap": {"neck": "separable", "width": 96},
           "dsnt": {"neck": "separable", "width": 96, "learn_temperature": True, "refine": 1},
           "nerpe": {"adapter": "movenet", "feat_dim": 16, "hidden": [32, 32]}}
RECIPE = {"model": {"head": "dsnt"}, "optim": {"lr": 0.001}, "seed": 3}


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@pytest.mark.parametrize("head", ["heatmap", "dsnt", "nerpe"])
def test_export_then_unpack_gives_back_the_checkpoint(head, tmp_path):
    meta = tiny_meta(head, "movenet_lightning", size=(64, 64), stride=4, **SHIPPED[head])
    torch.manual_seed(0)
    model = build_model(meta).eval()
    with torch.no_grad():  # weights that differ from any initialisation
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    save_checkpoint(tmp_path / "m.pt", model, meta, config=RECIPE, epoch=4)
    export_checkpoint(tmp_path / "m.pt", tmp_path / "m.onnx", ExportOptions(), progress=False)
    assert read_recipe(onnx.load(str(tmp_path / "m.onnx"))) == RECIPE

    back = load_checkpoint(checkpoint_from_onnx(tmp_path / "m.onnx", tmp_path / "back.pt"))
    assert back["config"] == RECIPE and back["meta"].head == head
    own = model.state_dict()
    assert set(back["model"]) == set(own)
    for k, v in own.items():
        assert torch.equal(back["model"][k], v), k


def test_derived_checkpoint_is_cached_per_content(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    meta = tiny_meta("heatmap", "movenet_lightning", size=(64, 64), stride=4, **SHIPPED["heatmap"])
    save_checkpoint(tmp_path / "m.pt", build_model(meta).eval(), meta, config=RECIPE)
    export_checkpoint(tmp_path / "m.pt", tmp_path / "m.onnx", ExportOptions(), progress=False)
    a = derived_checkpoint(tmp_path / "m.onnx")
    assert a.parent == tmp_path / "edgepose-derived" and a.is_file()
    stamp = a.stat().st_mtime_ns
    assert derived_checkpoint(tmp_path / "m.onnx") == a and a.stat().st_mtime_ns == stamp


def test_an_onnx_without_the_weights_under_their_names_is_one_clear_error(tmp_path):
    # a BatchNorm backbone: the exporter folds BN into the convolutions (renamed tensors)
    meta = tiny_meta("heatmap", "mobilenetv3_large_100", size=(64, 64), stride=16)
    save_checkpoint(tmp_path / "m.pt", build_model(meta).eval(), meta)
    export_checkpoint(tmp_path / "m.pt", tmp_path / "m.onnx", ExportOptions(), progress=False)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert all(p.key != RECIPE_KEY for p in proto.metadata_props)  # no config, no recipe
    with pytest.raises(EngineError, match="under their names"):
        checkpoint_from_onnx(tmp_path / "m.onnx", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    # a weight of the wrong shape for the model its metadata describes
    meta = tiny_meta("heatmap", "movenet_lightning", size=(64, 64), stride=4, **SHIPPED["heatmap"])
    save_checkpoint(tmp_path / "n.pt", build_model(meta).eval(), meta)
    export_checkpoint(tmp_path / "n.pt", tmp_path / "n.onnx", ExportOptions(), progress=False)
    proto = onnx.load(str(tmp_path / "n.onnx"))
    t = next(t for t in proto.graph.initializer if t.name.endswith(".weight"))
    t.CopyFrom(onnx.numpy_helper.from_array(np.zeros((1, 1), np.float32), t.name))
    onnx.save(proto, str(tmp_path / "shape.onnx"))
    with pytest.raises(EngineError, match="has shape"):
        checkpoint_from_onnx(tmp_path / "shape.onnx", tmp_path / "y.pt")

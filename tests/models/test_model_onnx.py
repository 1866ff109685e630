"""The inference forward (decoder included) exports to ONNX and ONNX Runtime agrees.

A quick check at a tiny size; the engines part owns the full export module.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgepose.models import build_model
from model_helpers import tiny_meta


def _export(model, x, path):
    torch.onnx.export(
        model, (x,), str(path), dynamo=False, opset_version=17,
        input_names=["image"], output_names=["coords", "scores"],
        dynamic_axes={"image": {0: "batch"}, "coords": {0: "batch"}, "scores": {0: "batch"}},
    )


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@pytest.mark.parametrize("head,refine", [("heatmap", 0), ("dsnt", 0), ("heatmap", 1), ("dsnt", 1)])
def test_onnx_runtime_matches_pytorch(head, refine, tmp_path):
    model = build_model(tiny_meta(head, "mobilenetv3_large_100", size=(64, 48), stride=16,
                                  refine=refine)).eval()
    torch.nn.init.normal_(model.head.final.weight, std=0.5)  # peaked, non-trivial heatmaps
    if refine:  # the stride-2 output: its refinement must run in the graph, not stay zero
        torch.nn.init.normal_(model.head.refine.outs[0].weight, std=0.5)
        assert model.head.heatmap_size == (32, 24)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 48)
    path = tmp_path / f"{head}.onnx"
    _export(model, x, path)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    ops = {n.op_type for n in graph.graph.node}
    assert "ArgMax" in ops if head == "heatmap" else "Softmax" in ops, ops

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, 3, 64, 48)  # another batch size than the traced one
    coords, scores = sess.run(None, {"image": x3.numpy()})
    with torch.no_grad():
        ref_c, ref_s = model(x3)
    assert coords.shape == (3, 17, 2) and scores.shape == (3, 17)
    err = np.abs(coords - ref_c.numpy()).max()
    assert err < 1e-3, f"{head}: ONNX Runtime coords differ by {err:.2e} px"
    assert np.abs(scores - ref_s.numpy()).max() < 1e-4

"""Q/DQ INT8 ONNX: symmetric quantizers only, head kept float, runs in ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper, TensorProto

from edgepose.errors import CalibrationError
from edgepose.calibration.qdq import QuantConfig, head_nodes, quantize_qdq
from edgepose.engines.int8 import nonzero_zero_points, qdq_problems
from edgepose.calibration.stream import CalibrationStream, StreamConfig
from edgepose.engines.meta_io import read_meta
from edgepose.engines.backend import load_backend

QDQ = ("QuantizeLinear", "DequantizeLinear")


def _stream(image_dir, meta, count=16, batch=8):
    return CalibrationStream(image_dir, meta, StreamConfig(count=count, batch=batch,
                                                           min_count=4, progress=False))


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_qdq_symmetric_and_runs(tiny_onnx, image_dir, tmp_path, method):
    meta = read_meta(tiny_onnx)
    out = tmp_path / f"tiny.{method}.onnx"
    summary = quantize_qdq(tiny_onnx, out, _stream(image_dir, meta), meta,
                           QuantConfig(method=method))
    q = onnx.load(str(out))
    onnx.checker.check_model(q)
    qnodes = [n for n in q.graph.node if n.op_type in QDQ]
    assert summary["quantize_linear_nodes"] >= 4 and qnodes, "nothing was quantized"
    inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    for n in qnodes:
        zp = inits[n.input[2]]
        assert not np.any(zp), f"{n.name}: zero point {zp} (not symmetric)"
        want = np.int32 if n.name.endswith("bias_DequantizeLinear") else np.int8
        assert zp.dtype == want, f"{n.name}: {zp.dtype}, expected signed {want.__name__}"
    assert nonzero_zero_points(q) == []
    assert qdq_problems(q) == [], "symmetric, float biases: what TensorRT parses"
    # weights are per channel: the first conv's weight scale has one value per out channel
    w_dq = next(n for n in qnodes if n.name == "backbone.0.weight_DequantizeLinear")
    assert inits[w_dq.input[1]].shape == (16,), inits[w_dq.input[1]].shape
    # the head's decoder stays float: no head node reads or writes a Q/DQ tensor
    head = {n.name for n in q.graph.node if n.name.startswith("/head/")}
    assert "/head/Softmax" in head and "/head/conv/Conv" in head
    dq_out = {n.output[0] for n in qnodes}
    for n in q.graph.node:
        if n.name in head:
            assert not dq_out & set(n.input), f"{n.name} was quantized"
    # metadata kept, precision int8; and ONNX Runtime runs it close to FP32
    assert read_meta(out).precision == "int8" and read_meta(out).backbone == "tiny-test"
    x = next(iter(_stream(image_dir, meta, 8)))
    with load_backend(tiny_onnx, device="cpu", threads=1) as f, \
            load_backend(out, device="cpu", threads=1) as i8:
        a, b = f(x), i8(x)
        assert i8.precision == "int8"
    err = np.abs(a["coords"] - b["coords"]).max()
    assert err < 1.0, f"INT8 coords differ by {err:.3f} px from FP32 on a 32 px input"
    assert np.isfinite(b["scores"]).all()


def test_qdq_rejects_quantized_input_and_overwrite(tiny_onnx, image_dir, tmp_path):
    meta = read_meta(tiny_onnx)
    with pytest.raises(CalibrationError, match="overwrite"):
        quantize_qdq(tiny_onnx, tiny_onnx, _stream(image_dir, meta), meta)
    out = tmp_path / "q.onnx"
    quantize_qdq(tiny_onnx, out, _stream(image_dir, meta), meta)
    with pytest.raises(CalibrationError, match="already quantized"):
        quantize_qdq(out, tmp_path / "qq.onnx", _stream(image_dir, meta), meta)
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        QuantConfig(method="mse")


def test_head_nodes_fallback_without_module_names():
    """Unnamed graphs: everything from the last Conv/MatMul on is kept float."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["a"], name="c1"),
        helper.make_node("Relu", ["a"], ["b"], name="r1"),
        helper.make_node("Conv", ["b", "w2"], ["c"], name="c2"),
        helper.make_node("Softmax", ["c"], ["y"], name="s"),
    ]
    w2 = numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), "w2")
    g = helper.make_graph(nodes, "g", [x], [y], [w, w2])
    assert head_nodes(g) == ["c2", "s"]
    g.node[1].name = "/head/neck/neck.1/Relu"
    g.node[2].name, g.node[3].name = "/head/final/Conv", "/head/Softmax"
    assert head_nodes(g) == ["/head/neck/neck.1/Relu", "/head/final/Conv", "/head/Softmax"]
    assert head_nodes(g, keep_neck=True) == ["/head/final/Conv", "/head/Softmax"]


def test_module_path_from_dynamo_metadata():
    """The dynamo exporter names nodes node_conv2d_3 and keeps the module path in metadata."""
    from edgepose.calibration.qdq import is_head_node, module_path

    node = helper.make_node("Conv", ["a", "w"], ["b"], name="node_conv2d_3")
    entry = node.metadata_props.add()
    entry.key = "pkg.torch.onnx.name_scopes"
    entry.value = "['', 'head', 'head.neck', 'head.neck.0', 'conv2d_3']"
    assert module_path(node) == ["head", "neck", "0"]
    assert is_head_node(node) and not is_head_node(node, keep_neck=True)
    entry.value = "['', 'backbone', 'backbone.body', 'conv2d_3']"
    assert not is_head_node(node)

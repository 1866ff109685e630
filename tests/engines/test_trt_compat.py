"""CPU-side TensorRT compatibility report on real exports and hand-made bad graphs."""

import pytest
from onnx import TensorProto, helper

from edgepose.engines.trt_compat import SUPPORTED_OPS, check_graph, check_onnx_file

from engine_helpers import HEADS


@pytest.mark.parametrize("head", HEADS)
def test_exported_heads_are_trt_clean(exported, head):
    _, onnx_path, _, _ = exported(head)
    report = check_onnx_file(onnx_path)
    assert report.ok, report.format()
    assert report.op_counts["Conv"] > 0 and report.opset >= 17
    assert "result: OK" in report.format()


def _model(nodes, inputs=("x",), initializers=()):
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_flags_nonzero_and_data_fed_reshape():
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz"], name="find_people"),
        helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64, name="to_int"),
        helper.make_node("ReduceMax", ["xi"], ["shape"], keepdims=0, name="max_as_shape"),
        helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_by_value"),
    ]
    report = check_graph(_model(nodes))
    text = report.format()
    assert not report.ok
    names = {f.node for f in report.data_dependent}
    assert names == {"find_people", "reshape_by_value"}, text
    assert "reshape_by_value (Reshape): input 1 ('shape') is computed from image values" in text


def test_shape_derived_reshape_is_fine():
    shape = helper.make_tensor("minus1", TensorProto.INT64, [1], [-1])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape_of_x"),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0, name="batch"),
        helper.make_node("Concat", ["b", "minus1"], ["target"], axis=0, name="target"),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="flatten"),
    ]
    zero = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
    report = check_graph(_model(nodes, initializers=[shape, zero]))
    assert report.ok, report.format()


def test_flags_unsupported_custom_and_control_flow():
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("LayerNormalization", ["x", "x"], ["ln"], name="ln0"),
        helper.make_node("Det", ["ln"], ["d"], name="det0"),
        helper.make_node("MyPlugin", ["d"], ["p"], domain="com.example", name="plugin0"),
        helper.make_node("Cast", ["p"], ["c"], to=TensorProto.BOOL, name="cond"),
        helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=then_g, name="if0"),
    ]
    report = check_graph(_model(nodes))
    bad = {(f.node, f.op) for f in report.unsupported}
    assert ("ln0", "LayerNormalization") in bad and ("det0", "Det") in bad
    assert ("plugin0", "MyPlugin") in bad
    assert [f.node for f in report.data_dependent] == ["if0"]
    assert report.op_counts["Cast"] == 1


def test_topk_with_computed_k():
    nodes = [
        helper.make_node("Cast", ["x"], ["k"], to=TensorProto.INT64, name="k_from_x"),
        helper.make_node("TopK", ["x", "k"], ["y", "i"], name="topk0"),
    ]
    report = check_graph(_model(nodes))
    assert any(f.node == "topk0" and "constant" in f.reason for f in report.unsupported)


def test_table_has_the_ops_edgepose_needs():
    for op in ("Conv", "ArgMax", "Softmax", "Resize", "GatherElements", "ReduceSum", "Mod",
               "Where", "Xor", "QuantizeLinear", "DequantizeLinear"):
        assert op in SUPPORTED_OPS, op
    assert "LayerNormalization" not in SUPPORTED_OPS  # added in TensorRT 8.6, not 8.5


def test_unreadable_file(tmp_path):
    from edgepose.errors import EngineError

    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(EngineError, match="junk.onnx: not a readable ONNX file"):
        check_onnx_file(p)

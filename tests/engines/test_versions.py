"""TensorRT version -> feature decisions, on plain version strings (no TensorRT needed)."""

import pytest

from edgepose.errors import EngineError
from edgepose.engines import versions as v


@pytest.mark.parametrize("text,expected", [
    ("8.5.2.2", (8, 5, 2)), ("8.6.1", (8, 6, 1)), ("10.3.0", (10, 3, 0)), ("10.13", (10, 13, 0)),
    ("11.0", (11, 0, 0)), ("11.4.1.post2", (11, 4, 1)), ("10", (10, 0, 0)),
])
def test_parse_version(text, expected):
    got = v.parse_version(text)
    assert (got.major, got.minor, got.patch) == expected, f"{text} -> {got}"


def test_parse_version_rejects_garbage():
    with pytest.raises(EngineError, match="cannot read the TensorRT version"):
        v.parse_version("trt-latest")


def test_versions_order_numerically():
    assert v.parse_version("10.13") > v.parse_version("10.3.0"), "10.13 must sort after 10.3"
    assert v.parse_version("8.6.1") < v.parse_version("10.0")


@pytest.mark.parametrize("text,fp16,int8,flags", [
    ("8.5.2", "builder_flag_fp16", "int8_flag", ("EXPLICIT_BATCH",)),
    ("8.6.1", "builder_flag_fp16", "int8_flag", ("EXPLICIT_BATCH",)),
    ("9.3.0", "builder_flag_fp16", "int8_flag", ("EXPLICIT_BATCH",)),  # implicit batch until 10
    ("10.3.0", "builder_flag_fp16", "int8_flag", ()),
    ("10.13", "builder_flag_fp16", "int8_flag", ()),
    ("11.0", "fp16_onnx", "int8_qdq", ("STRONGLY_TYPED",)),
    ("11.4.1", "fp16_onnx", "int8_qdq", ("STRONGLY_TYPED",)),
])
def test_precision_paths_and_flags(text, fp16, int8, flags):
    ver = v.parse_version(text)
    assert v.precision_path(ver, "fp32") == "fp32"
    assert v.precision_path(ver, "fp16") == fp16, text
    assert v.precision_path(ver, "INT8") == int8, text
    assert v.network_flags(ver) == flags, text


@pytest.mark.parametrize("text,cal", [("8.5.2", True), ("10.3.0", True), ("10.13", True),
                                      ("11.0", False)])
def test_calibrators_exist_until_11(text, cal):
    ver = v.parse_version(text)
    assert v.has_calibrators(ver) is cal
    assert v.has_precision_flags(ver) is cal
    assert v.is_strongly_typed(ver) is (not cal)


def test_too_old_and_unknown_precision():
    with pytest.raises(EngineError, match=">= 8.5"):
        v.precision_path(v.parse_version("8.4.3"), "fp32")
    with pytest.raises(EngineError, match="unknown precision 'bf16'"):
        v.precision_path(v.parse_version("10.3"), "bf16")


@pytest.mark.parametrize("version,route", [
    ("8.5.2.2", "calibrator"), ("8.6.1", "calibrator"), ("10.3.0", "quantize"),
    ("10.13.2.6", "quantize"), ("11.0", "quantize"),
])
def test_default_int8_route_for_calibration_data(version, route):
    assert v.int8_route(version, has_qdq=False, has_calibration=True) == route


def test_int8_route_table():
    """The one INT8 decision: (version, Q/DQ in the ONNX, calibration given) -> route."""
    old, new = v.parse_version("8.6.1"), v.parse_version("11.0")
    assert v.int8_route(old, has_qdq=True, has_calibration=True) == "qdq", "Q/DQ wins"
    assert v.int8_route(new, has_qdq=True, has_calibration=False) == "qdq"
    assert v.int8_route("10.3.0", False, True, prefer="calibrator") == "calibrator"
    assert v.int8_route(old, False, True, prefer="quantize") == "quantize"
    with pytest.raises(EngineError, match="no INT8 calibrators"):
        v.int8_route(new, has_qdq=False, has_calibration=True, prefer="calibrator")
    with pytest.raises(EngineError, match="unknown INT8 route"):
        v.int8_route("10.3", False, True, prefer="fp8")
    with pytest.raises(EngineError, match="too old|>= 8.5"):
        v.int8_route("8.4.3", False, True)
    with pytest.raises(EngineError) as e:
        v.int8_route(old, has_qdq=False, has_calibration=False)
    msg = str(e.value)
    assert "--calib-data" in msg and "edgepose calibrate" in msg, msg


def test_describe_support_mentions_the_route():
    assert "builder flag" in v.describe_support(v.parse_version("10.3"))
    assert "deprecated" in v.describe_support(v.parse_version("10.3"))
    assert "FP16 ONNX" in v.describe_support(v.parse_version("11.1"))


def test_trt_modules_import_without_tensorrt():
    import importlib

    for name in ("edgepose.engines.trt_build", "edgepose.engines.trt_backend", "edgepose.engines.plan_format",
                 "edgepose.engines.trt_compat", "edgepose.app.commands.build"):
        importlib.import_module(name)


def _qdq_model(path, zero_point: int):
    import onnx
    from onnx import TensorProto, helper

    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
             helper.make_tensor("z", TensorProto.INT8, [], [zero_point])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq0")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_qdq_detection_and_symmetry(tmp_path):
    from edgepose.engines.int8 import has_qdq
    from edgepose.engines.trt_build import own_qdq_plan

    sym = _qdq_model(tmp_path / "sym.onnx", 0)
    assert has_qdq(sym) is True
    assert own_qdq_plan(sym).parse_path == sym
    asym = _qdq_model(tmp_path / "asym.onnx", 3)
    assert has_qdq(asym) is True
    with pytest.raises(EngineError, match=r"asym.onnx: .*node 'q0' has a non-zero zero point"):
        own_qdq_plan(asym)


def test_tensorrt_probe_says_why_it_is_unavailable():
    from edgepose.engines.versions import tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    try:
        import pycuda.driver  # noqa: F401
        import tensorrt  # noqa: F401
    except ImportError:
        assert reason is not None and "not installed" in reason, reason
    else:
        assert reason is None or "CUDA" in reason, reason

"""TensorRT INT8 inputs: version routing (pure), the Q/DQ route on CPU, the calibrator on GPU."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from engines.versions import tensorrt_unavailable_reason

from calib_helpers import tiny_meta
from calibration.errors import CalibrationError
from calibration.stream import CalibrationStream, StreamConfig
from calibration.trt_calibrator import int8_build_inputs, int8_route, is_qdq_onnx
from edgepose.errors import EngineError


@pytest.mark.parametrize("version,route", [
    ("8.5.2.2", "calibrator"), ("8.6.1", "calibrator"), ("10.3.0", "qdq"),
    ("10.13.2.6", "qdq"), ("11.0", "qdq"),
])
def test_default_route(version, route):
    assert int8_route(version) == route


def test_preferred_route():
    assert int8_route("10.3.0", prefer="calibrator") == "calibrator"
    assert int8_route("8.6.1", prefer="qdq") == "qdq"
    with pytest.raises(CalibrationError, match="no INT8 calibrators"):
        int8_route("11.0.0", prefer="calibrator")
    with pytest.raises(CalibrationError, match="unknown INT8 route"):
        int8_route("10.3", prefer="fp8")
    with pytest.raises(EngineError, match="too old"):
        int8_route("8.4.3")


def _factory(image_dir):
    return lambda: CalibrationStream(image_dir, tiny_meta(), StreamConfig(
        count=8, batch=4, min_count=4, progress=False))


def test_qdq_route_writes_int8_onnx(tiny_onnx, image_dir, tmp_path):
    out = tmp_path / "tiny.int8.onnx"
    kind, path = int8_build_inputs(tiny_onnx, "10.3.0", _factory(image_dir), qdq_path=out)
    assert (kind, path) == ("qdq", out) and is_qdq_onnx(out), f"route {kind} -> {path}"
    # an ONNX that is already Q/DQ goes to TensorRT as it is, on any version
    calls = []
    kind, path = int8_build_inputs(out, "8.6.1", lambda: calls.append(1))
    assert (kind, path) == ("qdq", out) and not calls, "no calibration for a Q/DQ ONNX"
    assert not is_qdq_onnx(tiny_onnx)


def test_calibrator_route_without_tensorrt(tiny_onnx, image_dir, tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed; covered by the gpu test")
    with pytest.raises(CalibrationError, match="needs tensorrt and pycuda"):
        int8_build_inputs(tiny_onnx, "8.6.1", _factory(image_dir), tmp_path / "c.calib")


_TRT_SKIP = tensorrt_unavailable_reason()


@pytest.mark.gpu
@pytest.mark.skipif(bool(_TRT_SKIP), reason=_TRT_SKIP or "")
def test_entropy_calibrator_builds_and_caches(tiny_onnx, image_dir, tmp_path):
    import tensorrt as trt

    from calibration.cache import read_cache, unpack_cache
    from calibration.trt_calibrator import stream_fingerprint

    if int8_route(trt.__version__) != "calibrator" and not hasattr(trt, "IInt8EntropyCalibrator2"):
        pytest.skip(f"TensorRT {trt.__version__} has no calibrators")
    cache = tmp_path / "tiny.calib"
    kind, cal = int8_build_inputs(tiny_onnx, trt.__version__, _factory(image_dir), cache,
                                  prefer="calibrator")
    assert kind == "calibrator" and cal.get_batch_size() == 4
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) \
        if int(trt.__version__.split(".")[0]) < 10 else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(tiny_onnx.read_bytes()), parser.get_error(0)
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    profile.set_shape("image", (1, 3, 32, 32), cal.input_shape, cal.input_shape)
    config.add_optimization_profile(profile)
    cal_profile = builder.create_optimization_profile()
    cal_profile.set_shape("image", cal.input_shape, cal.input_shape, cal.input_shape)
    config.set_calibration_profile(cal_profile)
    config.int8_calibrator = cal
    plan = builder.build_serialized_network(network, config)
    assert plan is not None and cal.batches_used == 2, cal.batches_used
    details = stream_fingerprint(tiny_onnx, _factory(image_dir)())
    raw = read_cache(cache, details)
    assert raw and unpack_cache(cache.read_bytes())[1] == raw
    cal.close()
    assert np.frombuffer(bytes(plan), np.uint8).size > 0

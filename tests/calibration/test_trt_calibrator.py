"""TensorRT INT8 plans (calibration layer): the Q/DQ route on CPU, the calibrator on GPU.
The route decision itself is tested in tests/engines/test_versions.py (int8_route)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from calib_helpers import tiny_meta
from edgepose.calibration.stream import CalibrationStream, StreamConfig
from edgepose.calibration.trt_calibrator import plan_int8
from edgepose.engines.int8 import has_qdq, qdq_problems
from edgepose.engines.versions import int8_route, tensorrt_unavailable_reason
from edgepose.errors import CalibrationError


def _factory(image_dir):
    return lambda cfg: CalibrationStream(image_dir, tiny_meta(), StreamConfig(
        count=8, batch=4, min_count=4, progress=False))


def test_qdq_route_writes_int8_onnx(tiny_onnx, image_dir, tmp_path):
    plan = plan_int8(tiny_onnx, "10.3.0", tiny_meta(), calib_data=str(image_dir),
                     stream_factory=_factory(image_dir))
    out = plan.parse_path
    assert plan.route == "qdq" and has_qdq(out), f"route {plan.route} -> {out}"
    assert qdq_problems(out) == [], "the file TensorRT parses passes its Q/DQ checks"
    keep = tmp_path / "tiny.int8.onnx"
    keep.write_bytes(out.read_bytes())
    plan.close()
    assert not out.exists(), "close() removes the temporary Q/DQ ONNX"
    # an ONNX that is already Q/DQ goes to TensorRT as it is, on any version
    calls = []
    again = plan_int8(keep, "8.6.1", tiny_meta(), stream_factory=lambda c: calls.append(1))
    assert (again.route, again.parse_path) == ("qdq", keep) and not calls
    assert not has_qdq(tiny_onnx)


def test_calibrator_route_without_tensorrt(tiny_onnx, image_dir, tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed; covered by the gpu test")
    with pytest.raises(CalibrationError, match="needs tensorrt and pycuda"):
        plan_int8(tiny_onnx, "8.6.1", tiny_meta(), calib_data=str(image_dir),
                  calib_cache=tmp_path / "c.calib", stream_factory=_factory(image_dir))


_TRT_SKIP = tensorrt_unavailable_reason()


@pytest.mark.gpu
@pytest.mark.skipif(bool(_TRT_SKIP), reason=_TRT_SKIP or "")
def test_entropy_calibrator_builds_and_caches(tiny_onnx, image_dir, tmp_path):
    import tensorrt as trt

    from edgepose.calibration.cache import read_cache, unpack_cache
    from edgepose.calibration.trt_calibrator import stream_fingerprint

    if int8_route(trt.__version__, False, True) != "calibrator" and \
            not hasattr(trt, "IInt8EntropyCalibrator2"):
        pytest.skip(f"TensorRT {trt.__version__} has no calibrators")
    cache = tmp_path / "tiny.calib"
    plan = plan_int8(tiny_onnx, trt.__version__, tiny_meta(), calib_data=str(image_dir),
                     calib_cache=cache, prefer="calibrator", stream_factory=_factory(image_dir))
    cal = plan.calibrator
    assert plan.route == "calibrator" and cal.get_batch_size() == 4
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
    built = builder.build_serialized_network(network, config)
    assert built is not None and cal.batches_used == 2, cal.batches_used
    details = stream_fingerprint(tiny_onnx, _factory(image_dir)(None))
    raw = read_cache(cache, details)
    assert raw and unpack_cache(cache.read_bytes())[1] == raw
    plan.close()
    assert np.frombuffer(bytes(built), np.uint8).size > 0

"""INT8 in the TensorRT builder: which ONNX is parsed and which calibration profile is used
per TensorRT version (pure functions on plain data, an Int8Plan handed to the builder), the
real Q/DQ route on the CPU (ONNX Runtime quantization of a real export, checked for what
TensorRT's parser accepts), the CLI options and errors, and one GPU build per route where
TensorRT exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.app.cli import main
from edgepose.calibration.trt_calibrator import calib_stream_config, check_calib_options, plan_int8
from edgepose.engines import versions
from edgepose.engines.int8 import (Int8Plan, calibrator_shape, check_qdq_for_tensorrt, has_qdq,
                                   qdq_problems, static_batch)
from edgepose.engines.trt_build import (BuildOptions, calibration_profile_shapes, own_qdq_plan,
                                        parse_target)
from edgepose.engines.versions import int8_route, tensorrt_unavailable_reason
from edgepose.errors import CalibrationError, EngineError

from engine_helpers import HEADS, INPUT_HW

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
H, W = INPUT_HW


class ShapedCalibrator:
    """Plain stand-in for a calibrator's data: a shape and a close() that is counted."""

    def __init__(self, input_shape=None, batch=None):
        if input_shape is not None:
            self.input_shape = input_shape
        self.batch = batch
        self.closed = 0

    def get_batch_size(self) -> int:
        return self.batch

    def close(self) -> None:
        self.closed += 1


def write_images(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` blurred random PNGs (person-sized 96 x 72) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (96, 72, 3), dtype=np.uint8), (5, 5), 0)
        assert cv2.imwrite(str(folder / f"im_{i:02d}.png"), img)
    return folder


@pytest.fixture(scope="module")
def calib_images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("calib_images"), 20)


@pytest.fixture(scope="module")
def qdq_onnx(exported, calib_images, tmp_path_factory) -> Path:
    """A real Q/DQ ONNX of the tiny export, made through the builder's own INT8 step."""
    _, onnx_path, meta, _ = exported(HEADS[0])
    keep = tmp_path_factory.mktemp("qdq") / "model.int8.onnx"
    tmp = keep.parent / "work"
    tmp.mkdir()
    plan = plan_int8(onnx_path, "10.3.0", meta, calib_data=str(calib_images), progress=False)
    plan.parse_path.rename(keep)
    plan.close()
    return keep


# ----------------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize("version,route,precision_path", [
    ("8.5.2", "calibrator", "int8_flag"), ("8.6.1", "calibrator", "int8_flag"),
    ("10.3.0", "quantize", "int8_flag"), ("11.0", "quantize", "int8_qdq"),
])
def test_parsed_onnx_and_calibration_profile_per_version(version, route, precision_path,
                                                         tmp_path):
    """The plan each version's route makes -> the file TensorRT parses and the calibration
    profile (min = opt = max = the calibrator's shape, never the batch range)."""
    onnx_path, tmp = tmp_path / "model.onnx", tmp_path / "tmp"
    assert int8_route(version, has_qdq=False, has_calibration=True) == route
    path = versions.precision_path(versions.parse_version(version), "int8")
    assert path == precision_path
    cal = ShapedCalibrator(input_shape=(8, 3, H, W))
    plan = (Int8Plan("qdq", tmp / "model.int8.onnx") if route == "quantize"
            else Int8Plan("calibrator", onnx_path, cal, calibrator_shape(cal, (H, W))))
    parsed = parse_target(path, onnx_path, tmp, plan)
    shapes = calibration_profile_shapes(plan.calib_shape, (-1, 3, H, W))
    if route == "quantize":
        assert parsed == tmp / "model.int8.onnx" and plan.calibrator is None
        assert shapes is None, "a Q/DQ build has no calibration profile"
    else:
        assert parsed == onnx_path and plan.calibrator is cal
        assert shapes == ((8, 3, H, W),) * 3, shapes
    # the other precisions on the same version
    assert parse_target("fp32", onnx_path, tmp) == onnx_path
    fp16 = versions.precision_path(versions.parse_version(version), "fp16")
    want = tmp / "model_fp16.onnx" if version.startswith("11") else onnx_path
    assert parse_target(fp16, onnx_path, tmp) == want


def test_int8_parse_target_needs_a_plan(tmp_path):
    with pytest.raises(ValueError, match="Int8Plan"):
        parse_target("int8_flag", tmp_path / "m.onnx", tmp_path)
    with pytest.raises(ValueError, match="unknown INT8 route"):
        Int8Plan("fp8", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="calibrator route needs a calibrator"):
        Int8Plan("calibrator", tmp_path / "m.onnx")


def test_calibration_profile_shapes():
    dyn = (-1, 3, H, W)
    assert calibration_profile_shapes(None, dyn) is None
    assert calibration_profile_shapes([2, 3, H, W], dyn) == ((2, 3, H, W),) * 3
    # a fixed-shape network calibrates on its own shape: no profile, but it must match
    assert calibration_profile_shapes((4, 3, H, W), (4, 3, H, W)) is None
    with pytest.raises(EngineError, match=r"feeds \[8, 3, 64, 48\].*input is \[4, 3, 64, 48\]"):
        calibration_profile_shapes((8, 3, H, W), (4, 3, H, W))
    with pytest.raises(EngineError, match="input size"):
        calibration_profile_shapes((8, 3, W, H), dyn)
    with pytest.raises(EngineError, match="calibrate with"):
        calibration_profile_shapes((8, 3, H), dyn)


def test_calibrator_shape_and_ownership(exported):
    assert calibrator_shape(ShapedCalibrator(input_shape=[8, 3, H, W]), (H, W)) == (8, 3, H, W)
    assert calibrator_shape(ShapedCalibrator(batch=5), (H, W)) == (5, 3, H, W)
    _, onnx_path, meta, _ = exported(HEADS[0])
    made, given = ShapedCalibrator((8, 3, H, W)), ShapedCalibrator((8, 3, H, W))
    Int8Plan("calibrator", onnx_path, made, made.input_shape, cleanup=[made.close]).close()
    plan = plan_int8(onnx_path, "8.6.1", meta, calibrator=given)
    assert plan.route == "calibrator" and plan.calib_shape == (8, 3, H, W)
    plan.close()
    Int8Plan("qdq", Path("q.onnx")).close()  # Q/DQ route: nothing to close
    assert (made.closed, given.closed) == (1, 0), "close only the calibrator the plan made"


def test_int8_without_a_source_names_the_file(exported):
    _, onnx_path, _, _ = exported(HEADS[0])
    with pytest.raises(EngineError) as e:
        own_qdq_plan(onnx_path)
    msg = str(e.value)
    assert onnx_path.name in msg and "--calib-data" in msg and "edgepose calibrate" in msg, msg


def test_unused_calibration_options_are_refused():
    check_calib_options("int8", "imgs", "c.calib", False)
    with pytest.raises(CalibrationError, match="only apply to --precision int8, not fp16"):
        check_calib_options("fp16", "imgs", None, False)
    with pytest.raises(CalibrationError, match="needs --calib-data"):
        check_calib_options("int8", None, "c.calib", False)
    with pytest.raises(CalibrationError, match="not both"):
        check_calib_options("int8", "imgs", None, True)
    with pytest.raises(EngineError, match="only applies to --precision int8, not fp16"):
        BuildOptions(precision="fp16", int8=Int8Plan("qdq", Path("q.onnx")))


def test_calib_stream_batch_follows_static_onnx():
    assert calib_stream_config(None).batch == 8
    cfg = calib_stream_config(1, progress=False)
    assert (cfg.batch, cfg.count, cfg.progress) == (1, 256, False), cfg


# ----------------------------------------------------------------------------- real files


def test_onnx_static_batch(exported, tmp_path):
    import onnx

    _, onnx_path, _, _ = exported(HEADS[0])
    assert static_batch(onnx_path) is None
    model = onnx.load(str(onnx_path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    onnx.save(model, str(tmp_path / "static.onnx"))
    assert static_batch(tmp_path / "static.onnx") == 2


@pytest.mark.parametrize("version", ["10.3.0", "11.0"])
def test_qdq_route_quantizes_for_tensorrt(version, exported, calib_images, tmp_path):
    """10.x / 11.x with --calib-data: a symmetric Q/DQ ONNX in a temporary folder, which
    is what gets parsed, which TensorRT's parser accepts, and which still predicts like
    the FP32 model."""
    import onnxruntime as ort

    from edgepose.engines.export import synthetic_images

    _, onnx_path, meta, _ = exported(HEADS[0])
    plan = plan_int8(onnx_path, version, meta, calib_data=str(calib_images), progress=False)
    path = versions.precision_path(versions.parse_version(version), "int8")
    assert parse_target(path, onnx_path, tmp_path, plan) == plan.parse_path
    assert plan.parse_path.name == "model.int8.onnx" and plan.parse_path != onnx_path
    assert plan.calibrator is None and plan.calib_shape is None
    assert has_qdq(plan.parse_path), "the parsed file must hold Q/DQ nodes"
    assert qdq_problems(plan.parse_path) == []
    assert int8_route(version, has_qdq=True, has_calibration=False) == "qdq"
    x = synthetic_images(meta, 2)
    outs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
        ["coords"], {"image": x})[0] for p in (onnx_path, plan.parse_path)]
    err = np.abs(outs[0] - outs[1]).max(-1)
    assert np.median(err) < 0.25 * max(H, W), f"INT8 coords off by {np.median(err)} px"
    plan.close()
    assert not plan.parse_path.exists()


def test_qdq_onnx_is_parsed_as_is(exported, qdq_onnx, calib_images, tmp_path):
    _, _, meta, _ = exported(HEADS[0])
    for version in ("8.5.2", "11.0"):
        plan = plan_int8(qdq_onnx, version, meta)
        assert plan.parse_path == qdq_onnx and plan.calibrator is None
    assert own_qdq_plan(qdq_onnx).parse_path == qdq_onnx, "the builder's own plan, no data"
    with pytest.warns(UserWarning, match="already quantized"):
        plan_int8(qdq_onnx, "8.6.1", meta, calib_data=str(calib_images),
                  stream_factory=lambda cfg: pytest.fail("nothing to calibrate"))


def test_calibrator_route_checks_cache_first(exported, calib_images, tmp_path):
    """8.x: --calib-cache reaches the calibrator step and a foreign cache is refused before
    any TensorRT work."""
    _, onnx_path, meta, _ = exported(HEADS[0])
    cache = tmp_path / "other.calib"
    cache.write_bytes(b"not a cache")
    with pytest.raises(CalibrationError, match="other.calib"):
        plan_int8(onnx_path, "8.6.1", meta, calib_data=str(calib_images), calib_cache=cache,
                  progress=False)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT installed; the GPU test covers this route")
def test_calibrator_route_without_tensorrt(exported, calib_images, tmp_path):
    _, onnx_path, meta, _ = exported(HEADS[0])
    with pytest.raises(CalibrationError, match="needs tensorrt and pycuda"):
        plan_int8(onnx_path, "8.5.2", meta, calib_data=str(calib_images),
                  calib_cache=tmp_path / "m.calib", progress=False)


def test_calib_data_errors_name_the_source(exported, tmp_path):
    _, onnx_path, meta, _ = exported(HEADS[0])
    few = write_images(tmp_path / "few", 3)
    with pytest.raises(CalibrationError, match=r"few: found 3 images"):
        plan_int8(onnx_path, "10.3.0", meta, calib_data=str(few), progress=False)


# ----------------------------------------------------------------------------- CLI


def test_cli_int8_without_calibration_is_one_line(exported, tmp_path, capsys):
    _, onnx_path, _, _ = exported(HEADS[0])
    engine = tmp_path / "m.engine"
    rc = main(["build", str(onnx_path), "--precision", "int8", "--out", str(engine)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "--calib-data" in err and "edgepose calibrate" in err and onnx_path.name in err
    assert not engine.exists()


def test_cli_calibration_option_errors(exported, capsys):
    _, onnx_path, _, _ = exported(HEADS[0])
    rc = main(["build", str(onnx_path), "--calib-data", "imgs"])
    assert rc == 2 and "only apply to --precision int8, not fp32" in capsys.readouterr().err
    rc = main(["build", str(onnx_path), "--precision", "int8", "--calib-cache", "x.calib"])
    assert rc == 2 and "needs --calib-data" in capsys.readouterr().err


def test_cli_help_documents_calibration(capsys):
    with pytest.raises(SystemExit) as e:
        main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0
    assert "--calib-data PATH" in text and "COCO keypoint .json" in text
    assert "--calib-cache PATH" in text and "ONNX name + .calib" in text


@pytest.mark.skipif(HAS_TRT, reason="TensorRT present")
def test_cli_int8_with_sources_reaches_tensorrt(qdq_onnx, exported, calib_images, tmp_path,
                                                capsys):
    _, onnx_path, _, _ = exported(HEADS[0])
    for extra in ([str(qdq_onnx)], [str(onnx_path), "--calib-data", str(calib_images)]):
        rc = main(["build", *extra, "--precision", "int8", "--out", str(tmp_path / "m.engine")])
        err = capsys.readouterr().err
        assert rc == 2 and "TensorRT is not installed" in err, err


# ----------------------------------------------------------------------------- GPU


_TRT_SKIP = tensorrt_unavailable_reason()


@pytest.mark.gpu
@pytest.mark.skipif(bool(_TRT_SKIP), reason=_TRT_SKIP or "")
def test_int8_engine_from_calib_data(exported, calib_images, tmp_path):
    """The version's default route end to end; the engine predicts like ONNX Runtime FP32."""
    import tensorrt as trt

    from edgepose.engines import export as ex
    from edgepose.engines.backend import load_backend
    from edgepose.engines.trt_build import build_engine

    _, onnx_path, meta, _ = exported(HEADS[0])
    engine, cache = tmp_path / "m.int8.engine", tmp_path / "m.calib"
    route = int8_route(trt.__version__, False, True)
    plan = plan_int8(onnx_path, trt.__version__, meta, calib_data=str(calib_images),
                     calib_cache=cache, progress=False)
    opts = BuildOptions(precision="int8", max_batch=2, int8=plan)
    info = build_engine(onnx_path, engine, opts, progress=False)
    plan.close()
    assert info["int8_route"] == ("calibrator" if route == "calibrator" else "qdq")
    assert cache.is_file() == (route == "calibrator")
    x = ex.synthetic_images(meta, 2)
    with load_backend(engine) as trt_b, load_backend(onnx_path, device="cpu") as ort_b:
        assert trt_b.precision == "int8"
        d = np.abs(trt_b(x)["coords"] - ort_b(x)["coords"]).max(-1)
        assert np.median(d) < 0.25 * max(H, W), f"INT8 engine coords off by {np.median(d)} px"
    if route == "calibrator":  # a rebuild reuses the matching cache
        again = plan_int8(onnx_path, trt.__version__, meta, calib_data=str(calib_images),
                          calib_cache=cache, progress=False)
        build_engine(onnx_path, tmp_path / "again.engine",
                     BuildOptions(precision="int8", max_batch=2, int8=again), progress=False)
        again.close()


def test_tensorrt_qdq_check_sees_int32_biases(exported, calib_images, tmp_path):
    """ONNX Runtime's default quantizes Conv biases to INT32 constants behind a
    DequantizeLinear, which TensorRT's parser refuses (onnx-tensorrt #850). The CPU check
    finds them in such a file; edgepose's TensorRT preset writes none."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static

    from edgepose.engines.export import synthetic_images

    _, onnx_path, meta, _ = exported(HEADS[0])

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"image": synthetic_images(meta, 2)} for _ in range(2)])

        def get_next(self):
            return next(self.batches, None)

    ort_default = tmp_path / "ort_default.int8.onnx"
    quantize_static(str(onnx_path), str(ort_default), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    g = onnx.load(str(ort_default)).graph
    int32 = {t.name for t in g.initializer if t.data_type == onnx.TensorProto.INT32}
    assert any(n.op_type == "DequantizeLinear" and n.input[0] in int32 for n in g.node), \
        "ORT's default should put INT32 biases behind DequantizeLinear"
    problems = qdq_problems(ort_default)
    assert problems and all("INT32" in p for p in problems), problems
    with pytest.raises(EngineError, match="DequantizeLinear takes INT8 only"):
        check_qdq_for_tensorrt(ort_default, ort_default)
    with pytest.raises(EngineError, match="ort_default.int8.onnx"):
        own_qdq_plan(ort_default)
    plan = plan_int8(onnx_path, "10.3.0", meta, calib_data=str(calib_images), progress=False)
    assert qdq_problems(plan.parse_path) == [], "edgepose's TensorRT preset keeps biases float"
    plan.close()

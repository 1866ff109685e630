"""INT8 in the TensorRT builder: source checks, which ONNX is parsed and which calibration
profile is used per TensorRT version (pure functions on plain data), the real Q/DQ route on
the CPU (ONNX Runtime quantization of a real export), the CLI options and errors, and one
GPU build per route where TensorRT exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.versions import tensorrt_unavailable_reason

from calibration.trt_calibrator import int8_route
from edgepose.cli import main
from edgepose.errors import CalibrationError, EdgeposeError, EngineError
from engines import versions
from engines.trt_build import (BuildOptions, Int8Inputs, calib_stream_config,
                               calibration_profile_shapes, calibrator_shape, int8_inputs_from,
                               int8_source, onnx_has_qdq, onnx_static_batch, parse_target,
                               prepare_int8)

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
    ins = prepare_int8(onnx_path, "10.3.0", BuildOptions(precision="int8",
                       calib_data=str(calib_images)), meta, tmp, progress=False)
    ins.parse_path.rename(keep)
    return keep


# ----------------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize("version,route,precision_path", [
    ("8.5.2", "calibrator", "int8_flag"), ("8.6.1", "calibrator", "int8_flag"),
    ("10.3.0", "qdq", "int8_flag"), ("11.0", "qdq", "int8_qdq"),
])
def test_parsed_onnx_and_calibration_profile_per_version(version, route, precision_path,
                                                         tmp_path):
    """What int8_build_inputs answers on each version -> the file TensorRT parses and the
    calibration profile (min = opt = max = the calibrator's shape, never the batch range)."""
    onnx_path, tmp = tmp_path / "model.onnx", tmp_path / "tmp"
    assert int8_route(version) == route
    path = versions.precision_path(versions.parse_version(version), "int8")
    assert path == precision_path
    answer = (tmp / "model.int8.onnx" if route == "qdq"
              else ShapedCalibrator(input_shape=(8, 3, H, W)))
    ins = int8_inputs_from(route, answer, onnx_path, (H, W))
    parsed = parse_target(path, onnx_path, tmp, ins)
    shapes = calibration_profile_shapes(ins.calib_shape, (-1, 3, H, W))
    if route == "qdq":
        assert parsed == tmp / "model.int8.onnx" and ins.calibrator is None
        assert shapes is None, "a Q/DQ build has no calibration profile"
    else:
        assert parsed == onnx_path and ins.calibrator is answer and ins.owned
        assert shapes == ((8, 3, H, W),) * 3, shapes
    # the other precisions on the same version
    assert parse_target("fp32", onnx_path, tmp) == onnx_path
    fp16 = versions.precision_path(versions.parse_version(version), "fp16")
    want = tmp / "model_fp16.onnx" if version.startswith("11") else onnx_path
    assert parse_target(fp16, onnx_path, tmp) == want


def test_int8_parse_target_needs_inputs(tmp_path):
    with pytest.raises(ValueError, match="Int8Inputs"):
        parse_target("int8_flag", tmp_path / "m.onnx", tmp_path)
    with pytest.raises(ValueError, match="unknown INT8 input kind"):
        int8_inputs_from("fp8", None, tmp_path / "m.onnx", (H, W))


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


def test_calibrator_shape_and_ownership():
    assert calibrator_shape(ShapedCalibrator(input_shape=[8, 3, H, W]), (H, W)) == (8, 3, H, W)
    assert calibrator_shape(ShapedCalibrator(batch=5), (H, W)) == (5, 3, H, W)
    made, given = ShapedCalibrator((8, 3, H, W)), ShapedCalibrator((8, 3, H, W))
    int8_inputs_from("calibrator", made, "m.onnx", (H, W)).close()
    int8_inputs_from("calibrator", given, "m.onnx", (H, W), owned=False).close()
    Int8Inputs(Path("q.onnx")).close()  # Q/DQ route: nothing to close
    assert (made.closed, given.closed) == (1, 0), "close only the calibrator the build made"


def test_int8_source_choice():
    assert int8_source("m.onnx", True, None, False) == "qdq_onnx"
    assert int8_source("m.onnx", True, "imgs", True) == "qdq_onnx", "Q/DQ nodes win"
    assert int8_source("m.onnx", False, "imgs", False) == "calib_data"
    assert int8_source("m.onnx", False, None, True) == "calibrator"
    with pytest.raises(EngineError) as e:
        int8_source("m.onnx", False, None, False)
    msg = str(e.value)
    assert "m.onnx" in msg and "--calib-data" in msg and "edgepose calibrate" in msg, msg


def test_build_options_reject_unused_calibration():
    assert BuildOptions(precision="INT8", calib_data="imgs", calib_cache="c.calib").calib_data
    with pytest.raises(EngineError, match="only apply to --precision int8, not fp16"):
        BuildOptions(precision="fp16", calib_data="imgs")
    with pytest.raises(EngineError, match="needs --calib-data"):
        BuildOptions(precision="int8", calib_cache="c.calib")
    with pytest.raises(EngineError, match="not both"):
        BuildOptions(precision="int8", calib_data="imgs", int8_calibrator=ShapedCalibrator())


def test_calib_stream_batch_follows_static_onnx():
    assert calib_stream_config(None).batch == 8
    cfg = calib_stream_config(1, progress=False)
    assert (cfg.batch, cfg.count, cfg.progress) == (1, 256, False), cfg


def test_calibration_error_moved_and_reexported():
    import calibration.errors

    assert calibration.errors.CalibrationError is CalibrationError
    assert issubclass(CalibrationError, EdgeposeError)


# ----------------------------------------------------------------------------- real files


def test_onnx_static_batch(exported, tmp_path):
    import onnx

    _, onnx_path, _, _ = exported(HEADS[0])
    assert onnx_static_batch(onnx_path) is None
    model = onnx.load(str(onnx_path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    onnx.save(model, str(tmp_path / "static.onnx"))
    assert onnx_static_batch(tmp_path / "static.onnx") == 2


@pytest.mark.parametrize("version", ["10.3.0", "11.0"])
def test_qdq_route_quantizes_for_tensorrt(version, exported, calib_images, tmp_path):
    """10.x / 11.x with --calib-data: a symmetric Q/DQ ONNX in the build's temp folder,
    which is what gets parsed, and which still predicts like the FP32 model."""
    import onnxruntime as ort

    from engines.export import synthetic_images

    _, onnx_path, meta, _ = exported(HEADS[0])
    opts = BuildOptions(precision="int8", calib_data=str(calib_images))
    ins = prepare_int8(onnx_path, version, opts, meta, tmp_path, progress=False)
    path = versions.precision_path(versions.parse_version(version), "int8")
    assert parse_target(path, onnx_path, tmp_path, ins) == tmp_path / "model.int8.onnx"
    assert ins.calibrator is None and ins.calib_shape is None
    assert onnx_has_qdq(ins.parse_path), "the parsed file must hold Q/DQ nodes"
    assert versions.check_int8_source(versions.parse_version(version), True, False) == "qdq"
    x = synthetic_images(meta, 2)
    outs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
        ["coords"], {"image": x})[0] for p in (onnx_path, ins.parse_path)]
    err = np.abs(outs[0] - outs[1]).max(-1)
    assert np.median(err) < 0.25 * max(H, W), f"INT8 coords off by {np.median(err)} px"


def test_qdq_onnx_is_parsed_as_is(exported, qdq_onnx, calib_images, tmp_path):
    _, _, meta, _ = exported(HEADS[0])
    for version in ("8.5.2", "11.0"):
        ins = prepare_int8(qdq_onnx, version, BuildOptions(precision="int8"), meta, tmp_path)
        assert ins.parse_path == qdq_onnx and ins.calibrator is None
    with pytest.warns(UserWarning, match="already quantized"):
        prepare_int8(qdq_onnx, "8.6.1", BuildOptions(precision="int8",
                     calib_data=str(calib_images)), meta, tmp_path)
    assert not list(tmp_path.iterdir()), "nothing calibrated for a Q/DQ ONNX"


def test_calibrator_route_checks_cache_first(exported, calib_images, tmp_path):
    """8.x: --calib-cache reaches the calibrator step and a foreign cache is refused before
    any TensorRT work."""
    _, onnx_path, meta, _ = exported(HEADS[0])
    cache = tmp_path / "other.calib"
    cache.write_bytes(b"not a cache")
    opts = BuildOptions(precision="int8", calib_data=str(calib_images), calib_cache=str(cache))
    with pytest.raises(CalibrationError, match="other.calib"):
        prepare_int8(onnx_path, "8.6.1", opts, meta, tmp_path, progress=False)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT installed; the GPU test covers this route")
def test_calibrator_route_without_tensorrt(exported, calib_images, tmp_path):
    _, onnx_path, meta, _ = exported(HEADS[0])
    opts = BuildOptions(precision="int8", calib_data=str(calib_images),
                        calib_cache=str(tmp_path / "m.calib"))
    with pytest.raises(CalibrationError, match="needs tensorrt and pycuda"):
        prepare_int8(onnx_path, "8.5.2", opts, meta, tmp_path, progress=False)


def test_calib_data_errors_name_the_source(exported, tmp_path):
    _, onnx_path, meta, _ = exported(HEADS[0])
    few = write_images(tmp_path / "few", 3)
    with pytest.raises(CalibrationError, match=r"few: found 3 images"):
        prepare_int8(onnx_path, "10.3.0", BuildOptions(precision="int8", calib_data=str(few)),
                     meta, tmp_path, progress=False)


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

    from engines import export as ex
    from engines.backend import load_backend
    from engines.trt_build import build_engine

    _, onnx_path, meta, _ = exported(HEADS[0])
    engine, cache = tmp_path / "m.int8.engine", tmp_path / "m.calib"
    opts = BuildOptions(precision="int8", max_batch=2, calib_data=str(calib_images),
                        calib_cache=str(cache))
    info = build_engine(onnx_path, engine, opts, progress=False)
    route = int8_route(trt.__version__)
    assert info["int8_route"] == route
    assert cache.is_file() == (route == "calibrator")
    x = ex.synthetic_images(meta, 2)
    with load_backend(engine) as trt_b, load_backend(onnx_path, device="cpu") as ort_b:
        assert trt_b.precision == "int8"
        d = np.abs(trt_b(x)["coords"] - ort_b(x)["coords"]).max(-1)
        assert np.median(d) < 0.25 * max(H, W), f"INT8 engine coords off by {np.median(d)} px"
    if route == "calibrator":  # a rebuild reuses the matching cache
        build_engine(onnx_path, tmp_path / "again.engine", opts, progress=False)

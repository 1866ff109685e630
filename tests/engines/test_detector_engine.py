"""The person detector as a TensorRT engine: build, header, and running it (CPU, with fakes).

TensorRT and pycuda cannot be installed here, so small fakes stand in for them (as in
``test_trt_fakes.py``): a builder that records what ``edgepose build`` configures, and a
runtime whose engine computes its outputs by running the *real* detector ONNX in ONNX
Runtime on the bytes edgepose copied into the input buffer. That checks everything edgepose
itself does around TensorRT (header, buffers, copies, output order, decoding); the real
TensorRT engine runs only in the ``gpu`` tests.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.app.cli import main
from edgepose.engines import cuda_context, trt_backend, trt_build
from edgepose.engines.detector import DEFAULT_DETECTOR, Detector, onnx_detector_spec, static_copy
from edgepose.engines.plan_format import read_plan, write_plan
from edgepose.errors import EngineError

from engine_helpers import tiny_meta
from test_trt_fakes import FakeCuda, runtime_module

ROOT = Path(__file__).resolve().parents[2]
GROUP = ROOT / "tests" / "assets" / "multi" / "000000214753.jpg"


def fake_builder_trt(record: dict):
    """tensorrt for ``build_engine``: records flags, parsed file and profile use."""

    class Network:
        def get_input(self, i):
            return types.SimpleNamespace(name="image", shape=(1, 3, 416, 416))

    class Parser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            record["parsed"] = path
            return True

    class Config:
        def set_memory_pool_limit(self, pool, size):
            record["workspace"] = size

        def set_flag(self, flag):
            record.setdefault("flags", []).append(flag)

        def clear_flag(self, flag):
            pass

        def add_optimization_profile(self, p):
            record["profile"] = True
            return 0

        def create_timing_cache(self, data):
            return object()

        def set_timing_cache(self, cache, ignore_mismatch):
            return True

    class Builder:
        platform_has_fast_fp16 = True

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            raise AssertionError("a static-shape detector needs no profile")

        def build_serialized_network(self, network, config):
            return b"detector plan bytes"

    class Logger:
        WARNING, VERBOSE = 2, 0

        def __init__(self, level):
            pass

    return types.SimpleNamespace(
        __version__="10.3.0", Builder=Builder, OnnxParser=Parser, Logger=Logger,
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="ws"),
        BuilderFlag=types.SimpleNamespace(FP16="FP16", TF32="TF32", INT8="INT8"),
        NetworkDefinitionCreationFlag=types.SimpleNamespace())


def fake_runtime_trt(cuda: FakeCuda, onnx_path: Path):
    """tensorrt for ``TrtSession``: the engine's outputs are the real ONNX's, via ORT."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outs = [o.name for o in session.get_outputs()]
    shapes = {i.name: tuple(i.shape) for i in session.get_inputs()}
    shapes.update({o.name: tuple(o.shape) for o in session.get_outputs()})
    names = ["image", *outs]

    class ExecCtx:
        def __init__(self):
            self.addr = {}

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr
            return True

        def execute_async_v3(self, handle):
            x = cuda.memory[self.addr["image"]].data
            for n, v in zip(outs, session.run(outs, {"image": x})):
                cuda.memory[self.addr[n]].data = v
            return True

    class Engine:
        num_io_tensors = len(names)

        def get_tensor_name(self, i):
            return names[i]

        def get_tensor_mode(self, n):
            return "in" if n == "image" else "out"

        def get_tensor_shape(self, n):
            return shapes[n]

        def get_tensor_dtype(self, n):
            return "float"

        def create_execution_context(self):
            return ExecCtx()

    return runtime_module(Engine, expect_plan=b"detector plan bytes")


@pytest.fixture
def built(tmp_path, monkeypatch, capsys):
    """``edgepose build`` of the bundled detector ONNX with the fake builder."""
    record: dict = {}
    monkeypatch.setattr(trt_build, "import_tensorrt", lambda: fake_builder_trt(record))
    monkeypatch.setattr(trt_build, "cuda_device_name", lambda index=0: "Fake GPU")
    out = tmp_path / "detector.engine"
    assert main(["build", str(DEFAULT_DETECTOR), "--out", str(out), "--precision", "fp16",
                 "--no-progress"]) == 0
    record["stdout"] = capsys.readouterr().out
    return out, record


def test_build_writes_a_detector_engine(built):
    out, record = built
    # the bundled ONNX's input size is free: TensorRT parses a copy fixed at 416 x 416
    assert Path(record["parsed"]).name == "nanodet_person_416x416.onnx"
    assert record["flags"] == ["FP16"]
    assert "profile" not in record  # static 1x3x416x416: no optimisation profile
    pf = read_plan(out, kind="detector")
    assert pf.meta is None and pf.plan == b"detector plan bytes"
    assert pf.detector == onnx_detector_spec(DEFAULT_DETECTOR)  # all decoder settings travel
    assert pf.info["tensorrt"] == "10.3.0" and pf.info["precision"] == "fp16"
    assert "batch 1-1" in record["stdout"] and "fp16" in record["stdout"]


def test_detector_engine_runs_like_the_onnx(built, monkeypatch, tmp_path):
    out, _ = built
    cuda = FakeCuda()
    static = tmp_path / "static.onnx"  # what the engine was built from
    static_copy(DEFAULT_DETECTOR, static, (416, 416))
    monkeypatch.setattr(trt_backend, "import_runtime",
                        lambda: (fake_runtime_trt(cuda, static), cuda))
    monkeypatch.setattr(cuda_context, "_PRIMARY", {})
    img = cv2.imread(str(GROUP))
    ref_boxes, ref_scores = Detector(static, threads=1)(img)  # letterboxed, in ORT
    det = Detector(out)
    boxes, scores = det(img)
    assert len(ref_boxes) >= 2  # a real group photo
    np.testing.assert_allclose(boxes, ref_boxes, atol=1e-3)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    det.close()
    det.close()
    assert cuda.stack() == [] and all(m.freed for m in cuda.memory.values())
    assert cuda.detaches == 0


def test_engine_kinds_are_not_confused(tmp_path):
    from edgepose.engines.meta_io import read_meta

    det = tmp_path / "d.engine"
    write_plan(det, None, b"x", {"tensorrt": "10.3.0"}, detector={"input_size": [416, 416]})
    pose = tmp_path / "p.engine"
    write_plan(pose, tiny_meta("dsnt"), b"x", {"tensorrt": "10.3.0"})
    with pytest.raises(EngineError, match="person-detector engine, not a pose model"):
        read_meta(det)
    with pytest.raises(EngineError, match="pose-model engine, not a person detector"):
        Detector(pose)
    assert read_plan(det, kind="detector").detector == {"input_size": [416, 416]}


def test_detector_build_refuses_int8(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trt_build, "import_tensorrt", lambda: fake_builder_trt({}))
    assert main(["build", str(DEFAULT_DETECTOR), "--out", str(tmp_path / "d.engine"),
                 "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert "INT8 is not supported for the person detector" in err and "fp16" in err
    assert not (tmp_path / "d.engine").exists()


def test_run_and_predict_take_a_detector_file(tmp_path):
    """--detector reaches the detector: a file that is not one fails with its name."""
    import subprocess
    import sys

    bad = tmp_path / "notadetector.onnx"
    bad.write_bytes((ROOT / "edgepose" / "assets" / "real_heatmap_64.onnx").read_bytes())
    for cmd in (["predict", str(GROUP), "--multi", "--detector", str(bad), "--out",
                 str(tmp_path / "r.json")],
                ["run", "--source", str(GROUP), "--multi", "--detector", str(bad),
                 "--headless", "--frames", "2"]):
        r = subprocess.run([sys.executable, "-m", "edgepose", *cmd], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 2, (cmd, r.stderr)
        assert "notadetector.onnx" in r.stderr and "edgepose_detector" in r.stderr
        assert "Traceback" not in r.stderr
    good = subprocess.run([sys.executable, "-m", "edgepose", "predict", str(GROUP), "--multi",
                           "--detector", str(DEFAULT_DETECTOR), "--out",
                           str(tmp_path / "ok.json")], capture_output=True, text=True,
                          timeout=300)
    assert good.returncode == 0, good.stderr
    assert len(json.loads((tmp_path / "ok.json").read_text())) >= 2

"""``edgepose info`` tells a user what this machine can run, TensorRT support included."""

from __future__ import annotations

from edgepose.app.cli import main
from edgepose.app.commands.info import tensorrt_line


def test_tensorrt_line_says_what_each_version_supports():
    assert "not installed" in tensorrt_line(None) and "pip install" in tensorrt_line(None)
    assert "entropy calibrator (available)" in tensorrt_line("8.5.2.2")
    assert "deprecated" in tensorrt_line("10.3.0")
    assert "strongly typed" in tensorrt_line("11.0.0")
    assert "not usable" in tensorrt_line("8.2.1")


def test_info_reports_runtimes_teachers_and_models(capsys):
    import onnxruntime as ort

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"ONNX Runtime {ort.__version__}" in out and "CPUExecutionProvider" in out
    assert "TensorRT" in out and "teacher movenet-thunder (default)" in out
    assert "bundled models" in out and ".onnx" in out
    from edgepose.bundled import NAMED_MODELS

    line = next(x for x in out.splitlines() if x.startswith("models by name"))
    assert all(name in line for name in NAMED_MODELS) and "heatmap-128 (default)" in line
    assert "dsnt-64 (the 64-px default)" in line  # issue 29: DSNT won at 64 px


def test_the_default_per_size_is_a_named_model_of_that_size():
    from edgepose.bundled import ASSETS, DEFAULT_BY_SIZE, DEFAULT_MODEL, NAMED_MODELS
    from edgepose.engines.meta_io import read_meta

    assert ASSETS / NAMED_MODELS[DEFAULT_BY_SIZE[128]] == DEFAULT_MODEL
    for size, name in DEFAULT_BY_SIZE.items():
        assert tuple(read_meta(ASSETS / NAMED_MODELS[name]).input_size) == (size, size)

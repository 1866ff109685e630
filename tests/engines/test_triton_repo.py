"""``edgepose export --triton-repo``: a model repository a stock Triton server serves.

The config is parsed with Triton's own ModelConfig protobuf schema (tritonclient) and
checked against the ONNX graph's real I/O; where the serving venv exists, the bundled
``tritonserver`` itself reads the repository: it accepts the config and stops only at
the ONNX Runtime backend it does not ship (a typo'd config fails at parsing instead).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edgepose.app.cli import main
from edgepose.bundled import DEFAULT_MODEL
from edgepose.engines.meta_io import read_meta
from edgepose.engines.plan_format import write_plan
from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta

pytest.importorskip("tritonclient.grpc", reason="tritonclient not installed "
                    "(pip install 'edgepose[serve]')")

from edgepose.engines.triton_repo import (check_against_onnx, parse_config,  # noqa: E402
                                          write_repository)


def test_onnx_repository_declares_the_models_real_io(tmp_path, capsys):
    assert main(["export", str(DEFAULT_MODEL), "--triton-repo", str(tmp_path / "repo"),
                 "--max-batch", "8", "--max-delay-us", "500", "--instances", "2"]) == 0
    assert "tritonserver --model-repository" in capsys.readouterr().out
    folder = tmp_path / "repo" / "edgepose_pose"
    assert (folder / "1" / "model.onnx").read_bytes() == DEFAULT_MODEL.read_bytes()
    cfg = parse_config((folder / "config.pbtxt").read_text())
    meta = read_meta(DEFAULT_MODEL)
    assert cfg.name == "edgepose_pose" and cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == 8 and cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert cfg.instance_group[0].count == 2 and cfg.instance_group[0].kind == 2  # KIND_CPU
    assert [(t.name, list(t.dims)) for t in cfg.input] == [("image", [3, *meta.input_size])]
    assert [(t.name, list(t.dims)) for t in cfg.output] == [
        ("coords", [meta.num_joints, 2]), ("scores", [meta.num_joints])]
    back = ModelMeta.from_json(cfg.parameters["edgepose_meta"].string_value)
    assert back.to_dict() == meta.to_dict(), "the metadata a client reads back"
    check_against_onnx(cfg, DEFAULT_MODEL)


def test_a_config_that_disagrees_with_the_onnx_is_caught(tmp_path):
    folder = write_repository(DEFAULT_MODEL, tmp_path)
    text = (folder / "config.pbtxt").read_text()
    with pytest.raises(EngineError, match=r"declares 'image' as \[3, 64, 64\]"):
        check_against_onnx(parse_config(text.replace("3, 128, 128", "3, 64, 64")),
                           DEFAULT_MODEL)
    with pytest.raises(EngineError, match="does not have"):
        check_against_onnx(parse_config(text.replace('"scores"', '"score"')), DEFAULT_MODEL)
    with pytest.raises(EngineError, match="does not parse as Triton's ModelConfig"):
        parse_config(text.replace("max_batch_size", "max_batch_sise"))


def test_engine_repository_holds_the_raw_plan(tmp_path):
    meta = read_meta(DEFAULT_MODEL)
    engine = tmp_path / "m.engine"
    write_plan(engine, meta, b"raw tensorrt plan", {"tensorrt": "10.3.0", "batch_range": [1, 8]})
    folder = write_repository(engine, tmp_path / "repo", max_batch=8)
    assert (folder / "1" / "model.plan").read_bytes() == b"raw tensorrt plan"
    cfg = parse_config((folder / "config.pbtxt").read_text())
    assert cfg.platform == "tensorrt_plan" and cfg.instance_group[0].kind == 1  # KIND_GPU
    with pytest.raises(EngineError, match="built for batches 1-8"):
        write_repository(engine, tmp_path / "repo2", max_batch=16)


def test_static_batch_onnx_is_refused_with_the_fix(tmp_path):
    import onnx

    model = onnx.load(str(DEFAULT_MODEL))
    d = model.graph.input[0].type.tensor_type.shape.dim[0]
    d.Clear()
    d.dim_value = 1
    static = tmp_path / "static.onnx"
    onnx.save(model, str(static))
    with pytest.raises(EngineError, match="without --static-batch"):
        write_repository(static, tmp_path / "repo")


def test_tritonserver_itself_reads_the_repository(tmp_path):
    """Triton's own parser: our config passes it and loading stops only where this
    tritonserver lacks the onnxruntime backend; a misspelt field fails at parsing."""
    from edgepose.app.serving.server import serve_python

    try:
        python = serve_python()
    except EngineError as e:
        pytest.skip(f"no Triton serving venv here: {e}")
    out = subprocess.run([str(python), "-c", "import pytriton, os; print(os.path.dirname("
                          "pytriton.__file__))"], capture_output=True, text=True, check=True)
    ts = Path(out.stdout.strip()) / "tritonserver"
    folder = write_repository(DEFAULT_MODEL, tmp_path / "good")
    bad = tmp_path / "bad" / "edgepose_pose"
    (bad / "1").mkdir(parents=True)
    (bad / "1" / "model.onnx").write_bytes(b"")
    (bad / "config.pbtxt").write_text((folder / "config.pbtxt").read_text().replace(
        "max_batch_size", "max_batch_sise"))

    def log_of(repo):
        r = subprocess.run([str(ts / "bin" / "tritonserver"), "--model-repository", str(repo),
                            "--backend-directory", str(ts / "backends"),
                            "--exit-on-error=true", "--allow-http=false", "--allow-grpc=false",
                            "--allow-metrics=false"], capture_output=True, text=True,
                           timeout=60)
        return r.stdout + r.stderr

    good_log = log_of(tmp_path / "good")
    assert "Error parsing" not in good_log
    assert "unable to find backend library for backend 'onnxruntime'" in good_log, good_log[-800:]
    assert "has no field named \"max_batch_sise\"" in log_of(tmp_path / "bad")
    assert json.loads(parse_config((folder / "config.pbtxt").read_text())
                      .parameters["edgepose_meta"].string_value)["input_size"] == [128, 128]

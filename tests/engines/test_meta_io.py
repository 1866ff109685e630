"""One metadata reader for every artifact: checkpoint, ONNX, engine header round-trip through
``read_meta``; every broken file is one EngineError naming it."""

from __future__ import annotations

import dataclasses

import onnx
import pytest

from edgepose.engines.meta_io import METADATA_KEY, read_meta
from edgepose.engines.plan_format import write_plan
from edgepose.errors import EngineError

from engine_helpers import HEADS


def test_every_artifact_round_trips(exported, tmp_path):
    ckpt, onnx_path, meta, _ = exported(HEADS[0])
    engine = tmp_path / "m.engine"
    fp16 = dataclasses.replace(meta, precision="fp16")
    write_plan(engine, fp16, b"\x00plan bytes", {"tensorrt": "10.3.0"})
    assert read_meta(ckpt).to_dict() == meta.to_dict()
    assert read_meta(onnx_path).to_dict() == meta.to_dict()
    assert read_meta(engine).to_dict() == fp16.to_dict()


@pytest.mark.parametrize("suffix", [".pt", ".onnx", ".engine"])
def test_corrupt_files_are_one_engine_error(tmp_path, suffix):
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(b"\x13\x37 definitely not a model")
    with pytest.raises(EngineError, match=f"broken{suffix}"):
        read_meta(bad)


def test_missing_metadata_and_unknown_suffix(exported, tmp_path):
    _, onnx_path, _, _ = exported(HEADS[0])
    model = onnx.load(str(onnx_path))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(EngineError, match="bare.onnx: ONNX file has no edgepose metadata"):
        read_meta(bare)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, '{"head": "dsnt"}'
    partial = tmp_path / "partial.onnx"
    onnx.save(model, str(partial))
    with pytest.raises(EngineError, match="partial.onnx"):
        read_meta(partial)
    with pytest.raises(EngineError, match="unknown model file type '.txt'"):
        read_meta(tmp_path / "model.txt")
    with pytest.raises(EngineError, match="missing.onnx: model file not found"):
        read_meta(tmp_path / "missing.onnx")

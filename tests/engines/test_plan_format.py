"""Engine file header: round trip and every way a file can be broken."""

import json
import struct

import pytest

from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta
from edgepose.engines import plan_format as pf

META = ModelMeta(head="dsnt", backbone="resnet18", input_size=(64, 48), precision="fp16")
PLAN = bytes(range(256)) * 4


def test_round_trip(tmp_path):
    path = tmp_path / "m.engine"
    pf.write_plan(path, META, PLAN, {"tensorrt": "10.3.0", "device": "Orin"})
    got = pf.read_plan(path)
    assert got.plan == PLAN, "plan bytes must come back unchanged"
    assert got.meta.to_dict() == META.to_dict(), "metadata must survive the header"
    assert got.info == {"tensorrt": "10.3.0", "device": "Orin"}
    assert not list(tmp_path.glob(".*.tmp")), "atomic write must not leave temp files"


def test_layout_is_magic_version_length_json_plan():
    blob = pf.pack_plan(META, PLAN)
    magic, version, n = struct.unpack_from("<8sHI", blob)
    assert magic == pf.MAGIC and version == 1
    assert json.loads(blob[14:14 + n])["meta"]["head"] == "dsnt"
    assert blob[14 + n:] == PLAN


def test_bare_plan_has_no_header(tmp_path):
    path = tmp_path / "bare.engine"
    path.write_bytes(b"ftrt" + PLAN)  # what a plain TensorRT plan file looks like
    with pytest.raises(EngineError, match=r"bare.engine: no edgepose header.*edgepose build"):
        pf.read_plan(path)


@pytest.mark.parametrize("cut", [10, 20, 60])
def test_truncated_header(tmp_path, cut):
    path = tmp_path / "cut.engine"
    path.write_bytes(pf.pack_plan(META, PLAN)[:cut])
    with pytest.raises(EngineError, match="truncated"):
        pf.read_plan(path)


def test_broken_json(tmp_path):
    body = b'{"meta": {"head": "dsnt", '
    path = tmp_path / "broken.engine"
    path.write_bytes(struct.pack("<8sHI", pf.MAGIC, 1, len(body)) + body + PLAN)
    with pytest.raises(EngineError, match="broken.engine: metadata header is corrupt"):
        pf.read_plan(path)


def test_json_without_model_metadata(tmp_path):
    body = json.dumps({"meta": {"colour": "red"}}).encode()
    path = tmp_path / "nometa.engine"
    path.write_bytes(struct.pack("<8sHI", pf.MAGIC, 1, len(body)) + body + PLAN)
    with pytest.raises(EngineError, match="not edgepose model metadata"):
        pf.read_plan(path)


def test_header_without_plan(tmp_path):
    path = tmp_path / "empty.engine"
    path.write_bytes(pf.pack_plan(META, b""))
    with pytest.raises(EngineError, match="plan is missing"):
        pf.read_plan(path)


def test_newer_header_version(tmp_path):
    blob = bytearray(pf.pack_plan(META, PLAN))
    blob[8:10] = struct.pack("<H", 99)
    path = tmp_path / "new.engine"
    path.write_bytes(bytes(blob))
    with pytest.raises(EngineError, match="newer"):
        pf.read_plan(path)


def test_missing_file(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        pf.read_plan(tmp_path / "nope.engine")

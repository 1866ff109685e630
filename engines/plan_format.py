"""The ``.engine`` file: an edgepose header (model metadata JSON) in front of TensorRT plan bytes.

Layout (all integers little-endian)::

    offset  size  field
    0       8     magic  b"EPPLAN\\x00\\x1a"
    8       2     header format version (uint16, currently 1)
    10      4     JSON length N in bytes (uint32)
    14      N     UTF-8 JSON: {"meta": ModelMeta dict, "tensorrt": "10.3.0", "device": "...", ...}
                  (a person-detector engine has {"detector": its ONNX's detector metadata}
                  instead of "meta")
    14+N    ...   the serialized TensorRT plan (``IHostMemory`` bytes), to end of file

A plan is only valid for the TensorRT version and GPU it was built on; the header records
both so a mismatch can be explained instead of a bare deserialisation failure.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepose.fileio import atomic_write_bytes
from edgepose.errors import EngineError, ModelError
from edgepose.metadata import ModelMeta

MAGIC = b"EPPLAN\x00\x1a"
HEADER_VERSION = 1
_FIXED = struct.Struct("<8sHI")  # magic, version, json length
MAX_JSON_BYTES = 16 * 1024 * 1024
REBUILD = "rebuild it with 'edgepose build model.onnx --out model.engine'"


@dataclass
class PlanFile:
    """A parsed engine file: metadata, build info and the raw plan bytes. A pose engine has
    ``meta``; a person-detector engine has ``detector`` (and ``meta`` None)."""

    meta: ModelMeta | None
    plan: bytes
    info: dict[str, Any] = field(default_factory=dict)  # tensorrt version, device, batch range
    detector: dict[str, Any] | None = None


def pack_plan(meta: ModelMeta | None, plan: bytes, info: dict[str, Any] | None = None,
              detector: dict[str, Any] | None = None) -> bytes:
    """Header + plan as one bytes object (``meta`` for a pose model, ``detector`` for the
    person detector)."""
    if (meta is None) == (detector is None):
        raise ValueError("an engine holds a pose model (meta) or a detector, not both")
    head = {"meta": meta.to_dict()} if meta is not None else {"detector": dict(detector)}
    payload = {**head, **(info or {})}
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    return _FIXED.pack(MAGIC, HEADER_VERSION, len(body)) + body + bytes(plan)


def unpack_plan(data: bytes, source: str = "engine") -> PlanFile:
    """Parse bytes written by :func:`pack_plan`; EngineError naming ``source`` on any defect."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise EngineError(
            f"{source}: no edgepose header (a bare TensorRT plan or another file); {REBUILD}"
        )
    if len(data) < _FIXED.size:
        raise EngineError(f"{source}: header is truncated; {REBUILD}")
    _, version, n = _FIXED.unpack_from(data, 0)
    if version > HEADER_VERSION:
        raise EngineError(
            f"{source}: header format {version} is newer than this edgepose reads; "
            "upgrade edgepose or rebuild the engine"
        )
    if n > MAX_JSON_BYTES or _FIXED.size + n > len(data):
        raise EngineError(f"{source}: file is truncated inside the metadata header; {REBUILD}")
    body = data[_FIXED.size : _FIXED.size + n]
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EngineError(f"{source}: metadata header is corrupt ({e}); {REBUILD}") from None
    if not isinstance(payload, dict) or ("meta" not in payload
                                         and not isinstance(payload.get("detector"), dict)):
        raise EngineError(f"{source}: metadata header has no model metadata; {REBUILD}")
    meta, detector = None, None
    if "meta" in payload:
        try:
            meta = ModelMeta.from_dict(payload.pop("meta"), source=source)
        except ModelError as e:
            raise EngineError(f"{e}; {REBUILD}") from None
    else:
        detector = payload.pop("detector")  # a person-detector engine
    plan = data[_FIXED.size + n :]
    if not plan:
        raise EngineError(f"{source}: header present but the TensorRT plan is missing; {REBUILD}")
    return PlanFile(meta=meta, plan=plan, info=payload, detector=detector)


def write_plan(path, meta: ModelMeta | None, plan: bytes, info: dict[str, Any] | None = None,
               detector: dict[str, Any] | None = None) -> None:
    """Write header + plan to ``path`` atomically (temp file + rename)."""
    blob = pack_plan(meta, plan, info, detector)
    atomic_write_bytes(path, lambda f: f.write(blob))


def read_plan(path, kind: str = "pose") -> PlanFile:
    """Read and parse an engine file written by :func:`write_plan`; ``kind`` ("pose" or
    "detector") is what the caller needs, and the other kind is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: engine file not found")
    pf = unpack_plan(path.read_bytes(), source=str(path))
    if kind == "pose" and pf.meta is None:
        raise EngineError(f"{path}: is a person-detector engine, not a pose model; pass it "
                          "as --detector and give a pose model as --model")
    if kind == "detector" and pf.detector is None:
        raise EngineError(f"{path}: is a pose-model engine, not a person detector; build the "
                          "detector with 'edgepose build "
                          "edgepose/assets/nanodet_person.onnx --out detector.engine'")
    return pf

"""Fingerprinted calibration caches.

A TensorRT calibration cache holds per-tensor scales for ONE network and ONE input
distribution; TensorRT itself only checks tensor names, so a cache from another model (or
another preprocessing) can be silently accepted and give a wrong INT8 engine. Every cache
edgepose writes therefore starts with a header carrying a fingerprint::

    offset  size  field
    0       8     magic b"EPCALIB\\x01"
    8       4     JSON length N (uint32, little-endian)
    12      N     UTF-8 JSON {"fingerprint": sha256 hex, "details": {...}}
    12+N    ...   the cache bytes TensorRT wrote (``write_calibration_cache``), unchanged

The fingerprint is sha256 over: the ONNX graph + weights (file bytes), the input shape,
the preprocessing metadata (input size, mean, std, colour order) and the stream settings
(source, count, batch, seed, padding). A mismatch raises :class:`CalibrationError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from edgepose.errors import CalibrationError
from edgepose.fileio import atomic_write_bytes, file_sha256
from edgepose.metadata import ModelMeta

MAGIC = b"EPCALIB\x01"
_FIXED = struct.Struct("<8sI")


def fingerprint_details(
    onnx_path: str | os.PathLike,
    input_shape: tuple[int, ...],
    meta: ModelMeta,
    stream_settings: dict[str, Any],
) -> dict[str, Any]:
    """The plain-data description a fingerprint is computed from."""
    return {
        "onnx_sha256": file_sha256(onnx_path),
        "input_shape": [int(v) for v in input_shape],
        "preprocess": {"input_size": list(meta.input_size), "mean": list(meta.mean),
                       "std": list(meta.std), "color": meta.color},
        "stream": dict(sorted(stream_settings.items())),
    }


def fingerprint(details: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``details``."""
    text = json.dumps(details, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pack_cache(cache: bytes, details: dict[str, Any]) -> bytes:
    """Header (fingerprint + details) + the raw calibration cache bytes."""
    body = json.dumps({"fingerprint": fingerprint(details), "details": details},
                      sort_keys=True).encode("utf-8")
    return _FIXED.pack(MAGIC, len(body)) + body + bytes(cache)


def unpack_cache(data: bytes, source: str = "cache") -> tuple[dict[str, Any], bytes]:
    """(header dict, raw cache bytes); CalibrationError if ``data`` has no edgepose header."""
    if len(data) < _FIXED.size or data[:8] != MAGIC:
        raise CalibrationError(
            f"{source}: not an edgepose calibration cache (no fingerprint header); delete it "
            "and calibrate again"
        )
    _, n = _FIXED.unpack_from(data, 0)
    body = data[_FIXED.size:_FIXED.size + n]
    try:
        header = json.loads(body.decode("utf-8"))
        header["fingerprint"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise CalibrationError(
            f"{source}: calibration cache header is corrupt; delete it"
        ) from None
    return header, data[_FIXED.size + n:]


def write_cache(path: str | os.PathLike, cache: bytes, details: dict[str, Any]) -> None:
    """Atomically write ``cache`` with its fingerprint header to ``path``."""
    atomic_write_bytes(path, lambda f: f.write(pack_cache(cache, details)))


def _diff(want: dict[str, Any], got: dict[str, Any]) -> str:
    keys = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    return ", ".join(keys) or "fingerprint"


def read_cache(path: str | os.PathLike, details: dict[str, Any]) -> bytes | None:
    """Raw cache bytes if ``path`` exists and was made for ``details``; None if absent.

    Raises :class:`CalibrationError` naming what differs when the cache was made for
    another model, input shape, preprocessing or calibration stream.
    """
    path = Path(path)
    if not path.is_file():
        return None
    header, cache = unpack_cache(path.read_bytes(), str(path))
    if header["fingerprint"] != fingerprint(details):
        what = _diff(details, header.get("details") or {})
        raise CalibrationError(
            f"{path}: calibration cache was made for another model or setup (differs in: "
            f"{what}); delete it or pass another --cache path to calibrate again"
        )
    return cache

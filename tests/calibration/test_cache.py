"""Fingerprinted calibration caches: exact round trip, another model's cache refused."""

from __future__ import annotations

import pytest

from calib_helpers import export_tiny, tiny_meta
from edgepose.calibration.cache import (fingerprint, fingerprint_details, pack_cache, read_cache,
                               unpack_cache, write_cache)
from edgepose.errors import CalibrationError
from edgepose.calibration.stream import CalibrationStream, StreamConfig
from edgepose.calibration.trt_calibrator import stream_fingerprint

# What TensorRT writes: a text header line then "tensor: hex scale" lines (any bytes work).
TRT_CACHE = (b"TRT-8601-EntropyCalibration2\nimage: 3c010a14\n"
             b"/backbone/Relu_output_0: 3d7f5e6a\n\x00\xff")


def _details(onnx_path, **stream):
    return fingerprint_details(onnx_path, (8, 3, 32, 32), tiny_meta(),
                               {"source": "/data/calib", "count": 64, "seed": 0, **stream})


def test_round_trip_same_bytes(tiny_onnx, tmp_path):
    details = _details(tiny_onnx)
    path = tmp_path / "model.calib"
    write_cache(path, TRT_CACHE, details)
    assert read_cache(path, details) == TRT_CACHE
    header, raw = unpack_cache(path.read_bytes())
    assert raw == TRT_CACHE and header["fingerprint"] == fingerprint(details)
    assert header["details"]["input_shape"] == [8, 3, 32, 32]
    assert pack_cache(TRT_CACHE, details) == path.read_bytes(), "packing is not deterministic"
    assert read_cache(tmp_path / "absent.calib", details) is None


def test_other_model_refused(tiny_onnx, tmp_path):
    other = export_tiny(tmp_path / "other.onnx", seed=1)  # same graph, other weights
    path = tmp_path / "model.calib"
    write_cache(path, TRT_CACHE, _details(tiny_onnx))
    with pytest.raises(CalibrationError, match=r"another model.*onnx_sha256"):
        read_cache(path, _details(other))
    with pytest.raises(CalibrationError, match=r"another model.*stream"):
        read_cache(path, _details(tiny_onnx, seed=1))


def test_bare_or_corrupt_cache_refused(tiny_onnx, tmp_path):
    path = tmp_path / "bare.calib"
    path.write_bytes(TRT_CACHE)  # a cache TensorRT wrote directly, without our header
    with pytest.raises(CalibrationError, match="not an edgepose calibration cache"):
        read_cache(path, _details(tiny_onnx))
    good = pack_cache(TRT_CACHE, _details(tiny_onnx))
    path.write_bytes(good[:12] + b"{broken" + good[19:])
    with pytest.raises(CalibrationError, match="corrupt"):
        read_cache(path, _details(tiny_onnx))


def test_stream_fingerprint_tracks_settings(tiny_onnx, image_dir):
    meta = tiny_meta()

    def fp(**kw):
        cfg = StreamConfig(**{"count": 8, "batch": 4, "min_count": 4, "progress": False, **kw})
        return fingerprint(stream_fingerprint(tiny_onnx, CalibrationStream(image_dir, meta, cfg)))

    assert fp() == fp()
    assert len({fp(), fp(seed=1), fp(batch=2), fp(count=12)}) == 4

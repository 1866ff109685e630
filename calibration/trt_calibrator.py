"""TensorRT INT8 inputs: an entropy calibrator (8.5-10.x) or a Q/DQ ONNX (10.x/11.x).

This module imports without TensorRT or pycuda; the calibrator class is defined inside
:func:`make_entropy_calibrator`, only when it is asked for.

The builder (``engines/trt_build.py``) makes one call::

    kind, value = int8_build_inputs(onnx_path, trt.__version__, stream_factory, cache_path)
    # kind == "qdq":        parse ``value`` (a Q/DQ ONNX path) instead of onnx_path;
    #                       8.5-10.x also set BuilderFlag.INT8, 11.x needs nothing else.
    # kind == "calibrator": set BuilderFlag.INT8, config.int8_calibrator = value, and
    #                       config.set_calibration_profile(profile with min = opt = max =
    #                       value.input_shape) for a dynamic-batch network.

Route (:func:`int8_route`, pure): 8.5-9.x -> calibrator; 10.x -> Q/DQ (calibrators are
deprecated since 10.1 but still available on request); 11.x -> Q/DQ only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from calibration.cache import fingerprint_details, read_cache, write_cache
from calibration.errors import CalibrationError
from engines.versions import check_supported, has_calibrators, parse_version

ROUTES = ("qdq", "calibrator")


def int8_route(trt_version: str, prefer: str | None = None) -> str:
    """Which INT8 input to give TensorRT ``trt_version``: ``"calibrator"`` or ``"qdq"``.

    ``prefer`` forces a route where the version supports it (a calibrator on 11.x is an
    error). Pure function on a version string.
    """
    v = parse_version(trt_version)
    check_supported(v)
    if prefer is None:
        return "calibrator" if v.major < 10 else "qdq"
    if prefer not in ROUTES:
        raise CalibrationError(f"unknown INT8 route {prefer!r}; choose one of {list(ROUTES)}")
    if prefer == "calibrator" and not has_calibrators(v):
        raise CalibrationError(
            f"TensorRT {v} has no INT8 calibrators (networks are strongly typed); use the "
            "Q/DQ ONNX from 'edgepose calibrate' instead"
        )
    return prefer


def is_qdq_onnx(onnx_path: str | os.PathLike) -> bool:
    """True if the ONNX file already has QuantizeLinear/DequantizeLinear nodes."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def stream_fingerprint(onnx_path: str | os.PathLike, stream) -> dict[str, Any]:
    """Fingerprint details of a calibration run: model file, input shape, preprocessing
    and the stream's settings (see :mod:`calibration.cache`)."""
    h, w = stream.meta.input_size
    settings = {"source": str(Path(stream.set.source).resolve()),
                **stream.cfg.fingerprint_dict()}
    return fingerprint_details(onnx_path, (stream.cfg.batch, 3, h, w), stream.meta, settings)


def int8_build_inputs(
    onnx_path: str | os.PathLike,
    trt_version: str,
    stream_factory: Callable[[], Any],
    cache_path: str | os.PathLike | None = None,
    prefer: str | None = None,
    qdq_path: str | os.PathLike | None = None,
    quant_cfg=None,
) -> tuple[str, Any]:
    """What the TensorRT builder needs for INT8: ``("qdq", path)`` or ``("calibrator", obj)``.

    ``stream_factory()`` returns a :class:`calibration.stream.CalibrationStream` (called
    only when calibration data is needed). An ONNX that already has Q/DQ nodes is used as
    is. ``cache_path`` (calibrator route; default ``<onnx>.calib``) is checked *before* the
    build: a cache for another model raises CalibrationError instead of being reused.
    """
    onnx_path = Path(onnx_path)
    if is_qdq_onnx(onnx_path):
        return "qdq", onnx_path
    route = int8_route(trt_version, prefer)
    stream = stream_factory()
    if route == "qdq":
        from calibration.qdq import quantize_qdq

        out = Path(qdq_path) if qdq_path else onnx_path.with_suffix(".int8.onnx")
        quantize_qdq(onnx_path, out, stream, stream.meta, quant_cfg)
        return "qdq", out
    cache_path = Path(cache_path) if cache_path else onnx_path.with_suffix(".calib")
    details = stream_fingerprint(onnx_path, stream)
    read_cache(cache_path, details)  # raises now if the cache is for another model
    return "calibrator", make_entropy_calibrator(stream, cache_path, details)


def _cuda_context():
    """Make sure a CUDA context is current in this thread (primary context, no autoinit)."""
    import pycuda.driver as cuda

    cuda.init()
    if cuda.Context.get_current() is None:
        ctx = cuda.Device(0).retain_primary_context()
        ctx.push()
        return ctx
    return None


def make_entropy_calibrator(stream, cache_path: str | os.PathLike, details: dict[str, Any]):
    """An ``IInt8EntropyCalibrator2`` fed by ``stream`` and caching to ``cache_path``.

    Only full batches of ``stream.cfg.batch`` images are used (a short last batch is
    dropped: TensorRT calibrates with one fixed input shape). ``input_shape`` is that
    shape, for the builder's calibration profile.
    """
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as e:
        raise CalibrationError(
            f"the TensorRT calibrator needs tensorrt and pycuda ({e.name} is missing); "
            "pip install 'edgepose[trt]'"
        ) from None

    h, w = stream.meta.input_size
    shape = (stream.cfg.batch, 3, h, w)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.input_shape = shape
            self.cache_path = Path(cache_path)
            self.batches_used = 0
            self._ctx = _cuda_context()
            # the context our buffers live in; TensorRT calls get_batch from the thread
            # that runs the build (edgepose builds in a worker thread for the progress bar)
            self._owner = cuda.Context.get_current()
            self._device = cuda.mem_alloc(int(np.prod(shape)) * 4)
            self._host = cuda.pagelocked_empty(shape, np.float32)
            self._it = None

        def get_batch_size(self) -> int:
            return shape[0]

        def get_batch(self, names, *args):
            if self._it is None:
                self._it = iter(stream)
            batch = next(self._it, None)
            if batch is None or batch.shape != shape:
                return None
            self._host[...] = batch
            pushed = cuda.Context.get_current() is None  # pycuda's stack is per thread
            if pushed:
                self._owner.push()
            try:
                cuda.memcpy_htod(self._device, self._host)
            finally:
                if pushed:
                    cuda.Context.pop()
            self.batches_used += 1
            return [int(self._device)]

        def read_calibration_cache(self):
            return read_cache(self.cache_path, details)

        def write_calibration_cache(self, cache) -> None:
            write_cache(self.cache_path, bytes(cache), details)

        def close(self) -> None:
            if self._device is not None:
                self._device.free()
                self._device = None
            self._owner = None
            self._host = None  # pinned memory: free it while its context is still current
            if self._ctx is not None:  # the primary context _cuda_context retained
                self._ctx.pop()
                self._ctx.detach()
                self._ctx = None

    return EntropyCalibrator()

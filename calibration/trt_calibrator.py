"""TensorRT INT8 plans: calibration data -> a Q/DQ ONNX (10.x/11.x) or an entropy
calibrator (8.5-9.x), handed to the builder as a plain :class:`Int8Plan`.

This module imports without TensorRT or pycuda; the calibrator class is defined inside
:func:`make_entropy_calibrator`, only when it is asked for. ``edgepose build`` makes one
call and the builder (``engines/trt_build.py``) never sees calibration code::

    plan = plan_int8(onnx_path, trt.__version__, meta, calib_data="images/")
    try:
        build_engine(onnx_path, out, BuildOptions(precision="int8", int8=plan))
    finally:
        plan.close()

The route is decided once, by :func:`edgepose.engines.versions.int8_route`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.calibration.cache import fingerprint_details, read_cache, write_cache
from edgepose.engines import versions
from edgepose.engines.cuda_context import primary_context, pushed
from edgepose.engines.int8 import (
    Int8Plan, calibrator_shape, check_qdq_for_tensorrt, has_qdq, static_batch,
)
from edgepose.engines.meta_io import load_onnx
from edgepose.errors import CalibrationError
from edgepose.metadata import ModelMeta


def check_calib_options(precision: str, calib_data, calib_cache, has_calibrator: bool) -> None:
    """CalibrationError for calibration options that would be silently ignored."""
    if precision != "int8" and (calib_data or calib_cache or has_calibrator):
        raise CalibrationError(f"--calib-data / --calib-cache / an INT8 calibrator only apply "
                               f"to --precision int8, not {precision}; drop them or build int8")
    if calib_cache and not calib_data:
        raise CalibrationError(f"--calib-cache {calib_cache} needs --calib-data (the images "
                               "it was calibrated on: the cache is checked against them)")
    if calib_data and has_calibrator:
        raise CalibrationError("give either calibration data (--calib-data) or a ready INT8 "
                               "calibrator, not both")


def calib_stream_config(static: int | None, progress: bool = True):
    """The :class:`StreamConfig` for calibration data: the defaults, but with the ONNX's own
    batch size when it is fixed (an entropy calibrator must feed exactly the network's
    input shape)."""
    from edgepose.calibration.stream import StreamConfig

    cfg = StreamConfig(progress=progress)
    if static is not None:
        cfg.batch = static
    return cfg


def plan_int8(onnx_path, trt_version: str, meta: ModelMeta, calib_data=None,
              calib_cache=None, calibrator=None, prefer: str | None = None,
              progress: bool = True, quant_cfg=None, stream_factory=None) -> Int8Plan:
    """The :class:`Int8Plan` for building ``onnx_path`` on TensorRT ``trt_version``.

    An ONNX with Q/DQ nodes is parsed as it is (checked for what TensorRT accepts);
    ``calibrator`` (a ready ``IInt8Calibrator``, 8.5-10.x) is used as given and not
    closed; ``calib_data`` (images, a video or a COCO .json) is calibrated now: into a
    Q/DQ ONNX in a temporary folder (removed by ``plan.close()``), or into an entropy
    calibrator whose cache ``calib_cache`` (default ``<onnx>.calib``) is checked *before*
    the build. ``stream_factory(cfg)`` replaces the calibration stream (tests).
    """
    check_calib_options("int8", calib_data, calib_cache, calibrator is not None)
    onnx_path = Path(onnx_path)
    model = load_onnx(onnx_path)  # read once: Q/DQ nodes and the batch dimension
    qdq = has_qdq(model)
    if calibrator is not None and prefer is None:
        prefer = "calibrator"
    route = versions.int8_route(trt_version, qdq, bool(calib_data) or calibrator is not None,
                                prefer)
    if route == "qdq":
        if calib_data:
            warnings.warn(f"{onnx_path} is already quantized (Q/DQ); --calib-data "
                          f"{calib_data} is not used", stacklevel=2)
        check_qdq_for_tensorrt(model, onnx_path)
        return Int8Plan("qdq", onnx_path)
    if calibrator is not None:
        return Int8Plan("calibrator", onnx_path, calibrator,
                        calibrator_shape(calibrator, meta.input_size))
    cfg = calib_stream_config(static_batch(model), progress)
    if stream_factory is None:
        from edgepose.calibration.stream import CalibrationStream

        def stream_factory(c):
            return CalibrationStream(calib_data, meta, c)

    if route == "quantize":
        if calib_cache:
            warnings.warn(f"TensorRT {trt_version} builds INT8 from a Q/DQ ONNX; --calib-cache "
                          f"{calib_cache} is not used", stacklevel=2)
        from edgepose.calibration.qdq import quantize_qdq

        work = tempfile.mkdtemp(prefix="edgepose-int8-")
        try:
            out = Path(work) / "model.int8.onnx"
            quantize_qdq(onnx_path, out, stream_factory(cfg), meta, quant_cfg)
            check_qdq_for_tensorrt(out, out)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return Int8Plan("qdq", out, cleanup=[lambda: shutil.rmtree(work, ignore_errors=True)])
    stream = stream_factory(cfg)
    cache_path = Path(calib_cache) if calib_cache else onnx_path.with_suffix(".calib")
    details = stream_fingerprint(onnx_path, stream)
    read_cache(cache_path, details)  # raises now if the cache is for another model
    cal = make_entropy_calibrator(stream, cache_path, details)
    return Int8Plan("calibrator", onnx_path, cal, tuple(cal.input_shape), cleanup=[cal.close])


def stream_fingerprint(onnx_path: str | os.PathLike, stream) -> dict[str, Any]:
    """Fingerprint details of a calibration run: model file, input shape, preprocessing
    and the stream's settings (see :mod:`calibration.cache`)."""
    h, w = stream.meta.input_size
    settings = {"source": str(Path(stream.set.source).resolve()),
                **stream.cfg.fingerprint_dict()}
    return fingerprint_details(onnx_path, (stream.cfg.batch, 3, h, w), stream.meta, settings)


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
            # TensorRT calls get_batch from the thread that runs the build (edgepose builds
            # in a worker thread for the progress bar): every CUDA call pushes the primary
            # context in the calling thread and pops it after (never detached).
            cuda.init()
            self._ctx = primary_context(cuda, 0)
            with pushed(cuda, self._ctx):
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
            with pushed(cuda, self._ctx):
                cuda.memcpy_htod(self._device, self._host)
            self.batches_used += 1
            return [int(self._device)]

        def read_calibration_cache(self):
            return read_cache(self.cache_path, details)

        def write_calibration_cache(self, cache) -> None:
            write_cache(self.cache_path, bytes(cache), details)

        def close(self) -> None:
            if self._device is None:
                return
            with pushed(cuda, self._ctx):  # free pinned + device memory in their context
                self._device.free()
                self._device = None
                self._host = None

    return EntropyCalibrator()

"""TensorRT runtime backend for ``.engine`` / ``.plan`` files written by ``edgepose build``.

pycuda rules (DESIGN.md, :mod:`edgepose.engines.cuda_context`): no ``pycuda.autoinit``; the
device's *primary* context is retained once per process, pushed/popped around every call and
never detached, so the backend works from whichever thread runs inference (the realtime
app's inference thread) and closing leaves no stale context on any thread's stack. One execution context and one CUDA stream
per backend; calls are serialised by a lock - open one backend per inference thread.

I/O is name-based (TensorRT 8.5 - 11): ``num_io_tensors``, ``get_tensor_name/mode/shape/
dtype``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``. Host buffers are
pinned and sized for the largest batch of the optimisation profile; copies are async on the
backend's stream with one synchronize per call.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgepose.errors import EngineError
from edgepose.engines import versions
from edgepose.engines.backend import Backend, BackendOptions
from edgepose.engines.cuda_context import primary_context, pushed
from edgepose.engines.plan_format import read_plan

OUTPUTS = ("coords", "scores")


def import_runtime():
    """(tensorrt, pycuda.driver) with an install hint when either is missing."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError(f"TensorRT is not installed; {versions.INSTALL_HINT}") from None
    try:
        import pycuda.driver as cuda
    except ImportError:
        raise EngineError(
            "pycuda is not installed (needed to run TensorRT engines); "
            "pip install 'edgepose[trt]'") from None
    versions.check_supported(versions.parse_version(trt.__version__))
    return trt, cuda


def deserialize(trt, runtime, plan: bytes, path, info: dict, device_name: str):
    """The engine of ``plan``, or an EngineError that says which TensorRT and GPU built it
    when this one cannot load it (plans are tied to both)."""
    try:
        engine = runtime.deserialize_cuda_engine(plan)
    except Exception:  # some versions raise instead of returning None
        engine = None
    if engine is None:
        raise EngineError(
            f"{path}: TensorRT {trt.__version__} on {device_name} cannot load this engine "
            f"(built with TensorRT {info.get('tensorrt', '?')} on {info.get('device', '?')}); "
            "it was built for another TensorRT version or GPU; rebuild with 'edgepose build' "
            "on this device")
    return engine


def open_device(cuda, index: int, path):
    """(device name, retained primary context) of CUDA device ``index``; EngineError
    without a driver or GPU."""
    try:
        cuda.init()
        device = cuda.Device(index) if cuda.Device.count() else None
    except Exception as e:  # cuda.Error: no driver, bad device index
        raise EngineError(f"{path}: cannot open CUDA device {index} ({e})") from None
    if device is None:
        raise EngineError(f"{path}: no CUDA GPU found; TensorRT engines need an NVIDIA GPU")
    return device.name(), primary_context(cuda, index)


def execution_context(engine, path, device_name: str):
    """``engine.create_execution_context()``; None (out of GPU memory, or an engine this
    device cannot run) is an EngineError."""
    context = engine.create_execution_context()
    if context is None:
        raise EngineError(f"{path}: TensorRT could not create an execution context "
                          f"on {device_name} (out of GPU memory?)")
    return context


def bind_buffers(trt, cuda, engine, context, shapes: dict, host: dict, dev: dict,
                 path) -> None:
    """A pinned host and a device buffer of ``shapes[name]`` for each tensor, bound to
    ``context``. Fills ``host``/``dev`` as it goes, so after an error the caller frees what
    was allocated (:func:`release`)."""
    for n, shape in shapes.items():
        host[n] = cuda.pagelocked_empty(shape, np.dtype(trt.nptype(engine.get_tensor_dtype(n))))
        dev[n] = cuda.mem_alloc(host[n].nbytes)
        if not context.set_tensor_address(n, int(dev[n])):
            raise EngineError(f"{path}: TensorRT refused the device buffer of tensor "
                              f"{n!r}; rebuild the engine with 'edgepose build'")


def release(owner) -> None:
    """Free ``owner``'s device buffers (``_dev``) and drop its TensorRT objects, execution
    context before engine before runtime; the CUDA context must be current."""
    for buf in getattr(owner, "_dev", {}).values():
        buf.free()
    owner._dev, owner._host = {}, {}
    owner._context = owner._engine = owner._runtime = owner._stream = None


def batch_range_from_profile(engine_shape, profile_shapes) -> tuple[int, int]:
    """(min, max) batch from the input's engine shape and (min, opt, max) profile shapes."""
    if engine_shape[0] != -1:
        return int(engine_shape[0]), int(engine_shape[0])
    lo, _, hi = profile_shapes
    return int(lo[0]), int(hi[0])


def check_io_shapes(path, engine_shapes: dict, expected: dict) -> None:
    """EngineError unless every engine tensor shape matches the header's: same rank, and
    each fixed dim (not -1) equal to the expected one. Guards the fixed-size buffers."""
    for n, want in expected.items():
        got = tuple(int(d) for d in engine_shapes[n])
        if len(got) != len(want) or any(g not in (-1, e) for g, e in zip(got, want)):
            raise EngineError(f"{path}: engine tensor {n!r} has shape {list(got)} but the "
                              f"file header says {list(want)}; the header does not match the "
                              "plan - rebuild with 'edgepose build'")


class TensorRTBackend(Backend):
    """Runs a TensorRT plan with pycuda; outputs copied out of pinned buffers per call."""

    def __init__(self, path: Path, options: BackendOptions):
        trt, cuda = import_runtime()
        self._cuda = cuda
        self.source = str(path)
        pf = read_plan(path)
        self.meta, self.info = pf.meta, pf.info
        self.precision = pf.meta.precision
        self._lock = threading.Lock()
        self._ctx = None
        self._closed = False
        if options.device.split(":")[0] == "cpu":
            raise EngineError(f"{path}: a TensorRT engine runs on a GPU only; use the .onnx "
                              "file for CPU inference")
        self.device_name, self._ctx = open_device(cuda, options.cuda_index, path)
        with pushed(cuda, self._ctx):
            try:
                self._setup(trt, cuda, pf.plan, path)
            except BaseException:
                self._free_all()
                self._closed = True
                raise
        self.name = f"tensorrt-{self.precision}"

    def _setup(self, trt, cuda, plan: bytes, path: Path) -> None:
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = deserialize(trt, self._runtime, plan, path, self.info, self.device_name)
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        modes = {n: engine.get_tensor_mode(n) for n in names}
        inputs = [n for n in names if modes[n] == trt.TensorIOMode.INPUT]
        if inputs != ["image"] or not set(OUTPUTS) <= set(names):
            raise EngineError(f"{path}: engine tensors are {names}; expected input 'image' and "
                              "outputs 'coords', 'scores'; rebuild from an edgepose ONNX")
        shape = tuple(engine.get_tensor_shape("image"))
        profile = None
        if shape[0] == -1:  # name-based query (8.5+); the binding-based one is 8.x only
            profile = engine.get_tensor_profile_shape("image", 0) \
                if hasattr(engine, "get_tensor_profile_shape") \
                else engine.get_profile_shape(0, "image")
        self.batch_range = batch_range_from_profile(shape, profile)
        self._dynamic = shape[0] == -1
        self._context = execution_context(engine, path, self.device_name)
        self._stream = cuda.Stream()
        h, w = self.meta.input_size
        bmax, k = self.batch_range[1], self.meta.num_joints
        full = {"image": (bmax, 3, h, w), "coords": (bmax, k, 2), "scores": (bmax, k)}
        check_io_shapes(path, {n: tuple(engine.get_tensor_shape(n)) for n in full}, full)
        self._host, self._dev = {}, {}
        bind_buffers(trt, cuda, engine, self._context, full, self._host, self._dev, path)

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        cuda = self._cuda
        b = batch.shape[0]
        with self._lock:
            if self._closed:
                raise EngineError(f"{self.source}: backend is closed")
            with pushed(cuda, self._ctx):
                if self._dynamic:
                    if not self._context.set_input_shape("image", tuple(batch.shape)):
                        raise EngineError(f"{self.source}: TensorRT rejected input shape "
                                          f"{tuple(batch.shape)}; the engine's batch range "
                                          f"is {list(self.batch_range)}")
                    for n in OUTPUTS:  # outputs follow the batch; buffers hold bmax rows
                        got = tuple(self._context.get_tensor_shape(n))
                        if got[:1] != (b,):
                            raise EngineError(f"{self.source}: output {n!r} has shape {got} "
                                              f"for batch {b}; rebuild from an edgepose ONNX")
                host_in = self._host["image"][:b]
                np.copyto(host_in, batch, casting="same_kind")
                cuda.memcpy_htod_async(self._dev["image"], host_in, self._stream)
                if not self._context.execute_async_v3(self._stream.handle):
                    raise EngineError(f"{self.source}: TensorRT execution failed")
                for n in OUTPUTS:
                    cuda.memcpy_dtoh_async(self._host[n][:b], self._dev[n], self._stream)
                self._stream.synchronize()
            return {n: np.array(self._host[n][:b], dtype=np.float32) for n in OUTPUTS}

    def _free_all(self) -> None:
        release(self)

    def close(self) -> None:
        """Free GPU memory (in the primary context, from any thread). Safe to call twice."""
        with self._lock:
            if self._closed or self._ctx is None:
                self._closed = True
                return
            self._closed = True
            with pushed(self._cuda, self._ctx):
                self._free_all()
            self._ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

"""A static-shape TensorRT engine run like an ONNX Runtime session (the person detector).

``TrtSession(path).run(output_names, {"image": x})`` -> list of float32 arrays, the same
call :class:`edgepose.engines.detector.Detector` makes on an ``onnxruntime.InferenceSession``,
so the detector's numpy decoding is shared by both runtimes. The pycuda rules of
:mod:`edgepose.engines.trt_backend` apply: the primary context is pushed around every call,
never detached; buffers are pinned, copies async on one stream.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgepose.engines.cuda_context import pushed
from edgepose.engines.plan_format import read_plan
from edgepose.errors import EngineError


class TrtSession:
    """One engine of a person detector (``edgepose build nanodet_person.onnx``)."""

    def __init__(self, path, cuda_index: int = 0):
        from edgepose.engines.trt_backend import deserialize, import_runtime, open_device

        path = Path(path)
        pf = read_plan(path, kind="detector")
        self.detector_spec, self.info, self.source = pf.detector, pf.info, str(path)
        trt, cuda = import_runtime()
        self._cuda, self._lock, self._closed = cuda, threading.Lock(), False
        self._host: dict[str, np.ndarray] = {}
        self._dev: dict[str, object] = {}
        self.device_name, self._ctx = open_device(cuda, cuda_index, path)
        with pushed(cuda, self._ctx):
            try:
                self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
                self._engine = deserialize(trt, self._runtime, pf.plan, path, self.info,
                                           self.device_name)
                self._setup(trt, path)
            except BaseException:
                self._free()
                self._closed = True
                raise

    def _setup(self, trt, path: Path) -> None:
        from edgepose.engines.trt_backend import bind_buffers, execution_context

        engine, cuda = self._engine, self._cuda
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self._context = execution_context(engine, path, self.device_name)
        shapes = {n: tuple(engine.get_tensor_shape(n)) for n in names}
        for n, shape in shapes.items():
            if any(d < 0 for d in shape):
                raise EngineError(f"{path}: tensor {n!r} has a dynamic shape {list(shape)}; the "
                                  "detector engine needs the static shapes of its ONNX")
        bind_buffers(trt, cuda, engine, self._context, shapes, self._host, self._dev, path)
        self._stream = cuda.Stream()

    def input_shape(self, name: str) -> tuple[int, ...]:
        """The engine's (static) shape of input ``name``."""
        return tuple(self._host[name].shape)

    def run(self, output_names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        cuda = self._cuda
        with self._lock:
            if self._closed:
                raise EngineError(f"{self.source}: detector engine is closed")
            with pushed(cuda, self._ctx):
                for n in self.inputs:
                    x = feeds[n]
                    if x.shape != self._host[n].shape:
                        raise EngineError(f"{self.source}: input {n!r} must be "
                                          f"{list(self._host[n].shape)}, got {list(x.shape)}")
                    np.copyto(self._host[n], x, casting="same_kind")
                    cuda.memcpy_htod_async(self._dev[n], self._host[n], self._stream)
                if not self._context.execute_async_v3(self._stream.handle):
                    raise EngineError(f"{self.source}: TensorRT execution failed")
                for n in output_names:
                    cuda.memcpy_dtoh_async(self._host[n], self._dev[n], self._stream)
                self._stream.synchronize()
            return [np.array(self._host[n], dtype=np.float32) for n in output_names]

    def _free(self) -> None:
        from edgepose.engines.trt_backend import release

        release(self)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with pushed(self._cuda, self._ctx):
                self._free()

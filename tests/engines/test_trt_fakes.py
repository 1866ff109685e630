"""TensorRT / pycuda logic that no CPU machine can run, checked against small fakes.

Fakes stand in only for what cannot be installed here (tensorrt, pycuda); they model the
parts of the real APIs the code relies on: pycuda's per-thread context stack (``push`` /
static ``Context.pop``), ``retain_primary_context`` and ``detach``, and the TensorRT
return values that signal failure (``create_execution_context`` -> None,
``set_tensor_address`` -> False, ``add_optimization_profile`` -> -1,
``set_calibration_profile`` -> False). The real thing runs in the ``gpu`` tests.
"""

from __future__ import annotations

import threading
import types

import numpy as np
import pytest

from edgepose.engines import cuda_context, trt_backend
from edgepose.engines.backend import BackendOptions
from edgepose.engines.plan_format import write_plan
from edgepose.errors import EngineError

from engine_helpers import tiny_meta

K = 17


class FakeCuda:
    """pycuda.driver: a context stack per thread, device memory as numpy arrays."""

    def __init__(self):
        self.local = threading.local()
        self.retains = 0
        self.detaches = 0
        self.pushes: list[int] = []  # thread ids
        self.memory: dict[int, "FakeMem"] = {}
        fake = self

        class Context:
            @staticmethod
            def pop():
                fake.stack().pop()

            @staticmethod
            def get_current():
                return fake.stack()[-1] if fake.stack() else None

        class Ctx:
            def push(self):
                fake.pushes.append(threading.get_ident())
                fake.stack().append(self)

            def detach(self):
                fake.detaches += 1

        class Device:
            def __init__(self, index):
                self.index = index

            @staticmethod
            def count():
                return 1

            def name(self):
                return "Fake GPU"

            def retain_primary_context(self):
                fake.retains += 1
                return Ctx()

        self.Context, self.Device = Context, Device

    def stack(self) -> list:
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        return self.local.stack

    def init(self):
        pass

    def pagelocked_empty(self, shape, dtype):
        return np.zeros(shape, dtype)

    def mem_alloc(self, nbytes):
        assert self.stack(), "device memory needs a current context"
        m = FakeMem(nbytes, self)
        self.memory[int(m)] = m
        return m

    def memcpy_htod_async(self, dev, host, stream=None):
        assert self.stack(), "copy without a current context"
        dev.data = np.array(host, copy=True)

    def memcpy_htod(self, dev, host):
        self.memcpy_htod_async(dev, host)

    def memcpy_dtoh_async(self, host, dev, stream):
        assert self.stack(), "copy without a current context"
        host[...] = dev.data[: host.shape[0]]

    class Stream:
        handle = 7

        def synchronize(self):
            pass


class FakeMem:
    _next = 0x1000

    def __init__(self, nbytes, cuda):
        FakeMem._next += 0x1000
        self.addr, self.nbytes, self.cuda = FakeMem._next, nbytes, cuda
        self.data, self.freed = None, False

    def __int__(self):
        return self.addr

    def free(self):
        assert self.cuda.stack(), "free without a current context"
        self.freed = True


def fake_trt(cuda: FakeCuda, h: int, w: int, context_ok=True, address_ok=True,
             static: int | None = None, ran: list | None = None):
    """A TensorRT module whose engine 'runs' coords = per-image mean pixel + joint index:
    a dynamic batch of 1-4 (an optimisation profile), or ``static`` (a fixed batch).
    ``ran`` collects the batch size of every execution."""
    batch_dim = -1 if static is None else static

    class ExecCtx:
        def __init__(self):
            self.addr, self.shape = {}, None

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr
            return address_ok

        def set_input_shape(self, name, shape):
            self.shape = tuple(shape)
            return 1 <= shape[0] <= 4

        def get_tensor_shape(self, name):
            b = self.shape[0]
            return {"coords": (b, K, 2), "scores": (b, K), "image": self.shape}[name]

        def execute_async_v3(self, handle):
            img = cuda.memory[self.addr["image"]].data
            b = img.shape[0]
            assert static is None or b == static, f"static batch {static} run with {b}"
            if ran is not None:
                ran.append(b)
            mean = img.reshape(b, -1).mean(1)
            coords = mean[:, None, None] + np.arange(K)[None, :, None] + np.zeros((b, K, 2))
            cuda.memory[self.addr["coords"]].data = coords.astype(np.float32)
            cuda.memory[self.addr["scores"]].data = np.full((b, K), 0.5, np.float32)
            return True

    class Engine:
        num_io_tensors = 3
        names = ["image", "coords", "scores"]

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, n):
            return "in" if n == "image" else "out"

        def get_tensor_shape(self, n):
            return {"image": (batch_dim, 3, h, w), "coords": (batch_dim, K, 2),
                    "scores": (batch_dim, K)}[n]

        def get_tensor_dtype(self, n):
            return "float"

        def get_tensor_profile_shape(self, n, i):
            return (1, 3, h, w), (1, 3, h, w), (4, 3, h, w)

        def create_execution_context(self):
            return ExecCtx() if context_ok else None

    return runtime_module(Engine)


def runtime_module(make_engine, expect_plan: bytes | None = None):
    """The runtime half of a fake ``tensorrt``: Runtime (deserialises to ``make_engine()``,
    checking the plan bytes when ``expect_plan``), Logger, nptype, TensorIOMode."""

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            assert expect_plan is None or plan == expect_plan
            return make_engine()

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    return types.SimpleNamespace(
        __version__="10.3.0", Logger=Logger, Runtime=Runtime, nptype=lambda d: np.float32,
        TensorIOMode=types.SimpleNamespace(INPUT="in", OUTPUT="out"))


@pytest.fixture
def engine_file(tmp_path):
    meta = tiny_meta("dsnt")
    path = tmp_path / "m.engine"
    write_plan(path, meta, b"fake plan", {"tensorrt": "10.3.0", "device": "Fake GPU"})
    return path, meta


@pytest.fixture
def fakes(monkeypatch, engine_file):
    cuda = FakeCuda()
    h, w = engine_file[1].input_size
    state = {"trt": fake_trt(cuda, h, w)}
    monkeypatch.setattr(trt_backend, "import_runtime", lambda: (state["trt"], cuda))
    monkeypatch.setattr(cuda_context, "_PRIMARY", {})
    return cuda, state


def open_backend(path):
    return trt_backend.TensorRTBackend(path, BackendOptions(device="cuda"))


def test_primary_context_retained_once_and_never_detached(fakes, engine_file):
    cuda, _ = fakes
    path, meta = engine_file
    a, b = open_backend(path), open_backend(path)
    h, w = meta.input_size
    x = np.full((1, 3, h, w), 2.0, np.float32)
    out = a(x)
    np.testing.assert_allclose(out["coords"][0, :, 0], 2.0 + np.arange(K))  # batch 1
    assert b(np.ones((3, 3, h, w), np.float32))["coords"].shape == (3, K, 2)
    a.close()
    b.close()
    a.close()  # twice is fine
    assert cuda.retains == 1, "one retain of the primary context per device per process"
    assert cuda.detaches == 0, "detach never pops; the primary context stays retained"
    assert cuda.stack() == [], "no stale context left on this thread's stack"
    assert all(m.freed for m in cuda.memory.values())


@pytest.mark.parametrize("static", [None, 2])
def test_any_batch_size_gives_each_crop_the_same_output(fakes, engine_file, static):
    """A TensorRT engine (profile 1-4, or a static batch of 2) fed 1 crop, its maximum and
    more than its maximum: every crop gets what it gets alone (Backend.__call__ chunks to
    the engine's batch range and pads a short chunk of a static engine)."""
    cuda, state = fakes
    path, meta = engine_file
    h, w = meta.input_size
    ran: list[int] = []
    state["trt"] = fake_trt(cuda, h, w, static=static, ran=ran)
    be = open_backend(path)
    most = be.batch_range[1]
    assert be.batch_range == ((1, 4) if static is None else (2, 2))
    x = np.random.default_rng(0).normal(size=(2 * most + 1, 3, h, w)).astype(np.float32)
    alone = np.concatenate([be(x[i:i + 1])["coords"] for i in range(len(x))])
    for n in (1, most, most + 1, 2 * most + 1):
        ran.clear()
        np.testing.assert_allclose(be(x[:n])["coords"], alone[:n], rtol=0, atol=1e-6)
        assert len(ran) == -(-n // most) and max(ran) <= most, ran
    be.close()
    assert all(m.freed for m in cuda.memory.values())


def test_inference_and_close_from_another_thread(fakes, engine_file):
    cuda, _ = fakes
    path, meta = engine_file
    backend = open_backend(path)
    h, w = meta.input_size
    results, stacks = {}, {}

    def worker():
        results["out"] = backend(np.zeros((2, 3, h, w), np.float32))
        backend.close()  # e.g. the inference thread shutting down, or the GC
        stacks["worker"] = list(cuda.stack())
        results["tid"] = threading.get_ident()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert results["out"]["coords"].shape == (2, K, 2)
    assert results["tid"] in cuda.pushes, "the worker pushed the context in its own thread"
    assert stacks["worker"] == [] and cuda.stack() == []
    assert all(m.freed for m in cuda.memory.values()), "freed from the other thread"


def test_failed_setup_steps_are_engine_errors(fakes, engine_file):
    cuda, state = fakes
    path, meta = engine_file
    h, w = meta.input_size
    state["trt"] = fake_trt(cuda, h, w, context_ok=False)
    with pytest.raises(EngineError, match="could not create an execution context"):
        open_backend(path)
    assert cuda.stack() == []
    state["trt"] = fake_trt(cuda, h, w, address_ok=False)
    with pytest.raises(EngineError, match="refused the device buffer of tensor 'image'"):
        open_backend(path)
    assert cuda.stack() == [] and all(m.freed for m in cuda.memory.values())


def test_builder_checks_profile_returns(engine_file):
    from edgepose.engines.int8 import Int8Plan
    from edgepose.engines.trt_build import BuildOptions, _add_profile, configure_int8
    from edgepose.engines.versions import parse_version

    _, meta = engine_file
    h, w = meta.input_size

    class Profile:
        def set_shape(self, *a):
            pass

    builder = types.SimpleNamespace(create_optimization_profile=Profile)
    net = types.SimpleNamespace(get_input=lambda i: types.SimpleNamespace(
        name="image", shape=(-1, 3, h, w)))
    config = types.SimpleNamespace(add_optimization_profile=lambda p: -1)
    with pytest.raises(EngineError, match="refused the optimisation profile batch 1-4"):
        _add_profile(builder, net, config, meta, BuildOptions())
    config.add_optimization_profile = lambda p: 0
    assert _add_profile(builder, net, config, meta, BuildOptions())[0] == [1, 4]

    flags = []
    trt = types.SimpleNamespace(BuilderFlag=types.SimpleNamespace(INT8="INT8", FP16="FP16"))
    cfg = types.SimpleNamespace(set_flag=flags.append, set_calibration_profile=lambda p: False)
    cal = object()
    plan = Int8Plan("calibrator", "m.onnx", cal, (8, 3, h, w))
    with pytest.raises(EngineError, match="refused the INT8 calibration profile"):
        configure_int8(trt, cfg, parse_version("8.6.1"), plan, calib_profile=Profile())
    assert cfg.int8_calibrator is cal and flags == ["INT8", "FP16"]
    with pytest.raises(EngineError, match="no INT8 calibrators"):
        configure_int8(trt, cfg, parse_version("11.0"), plan)


def test_calibrator_pushes_in_the_build_thread(monkeypatch, tmp_path):
    """The entropy calibrator: get_batch from TensorRT's build thread pushes the primary
    context there, close frees in it, nothing is detached."""
    import sys

    from edgepose.calibration import trt_calibrator

    cuda = FakeCuda()

    class IInt8EntropyCalibrator2:
        def __init__(self):
            pass

    trt = types.SimpleNamespace(IInt8EntropyCalibrator2=IInt8EntropyCalibrator2)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    monkeypatch.setattr(cuda_context, "_PRIMARY", {})
    meta = tiny_meta("dsnt")
    h, w = meta.input_size
    batches = [np.full((2, 3, h, w), i, np.float32) for i in range(2)]
    stream = type("S", (), {"meta": meta, "cfg": types.SimpleNamespace(batch=2),
                            "__iter__": lambda self: iter(batches)})()
    cal = trt_calibrator.make_entropy_calibrator(stream, tmp_path / "c.calib", {})
    assert cuda.stack() == []
    got = []
    t = threading.Thread(target=lambda: got.extend([cal.get_batch(["image"]) for _ in range(3)]))
    t.start()
    t.join()
    assert got[0] and got[1] and got[2] is None and cal.batches_used == 2
    assert len(set(cuda.pushes)) == 2, "pushed in the creating thread and in the build thread"
    cal.close()
    cal.close()
    assert cuda.retains == 1 and cuda.detaches == 0 and cuda.stack() == []
    assert all(m.freed for m in cuda.memory.values())

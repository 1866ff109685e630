"""One inference interface over PyTorch, ONNX Runtime and TensorRT.

``load_backend(path)`` picks the runtime from the file suffix::

    .pt .pth .ckpt   -> TorchBackend        (engines/torch_backend.py)
    .onnx            -> OrtBackend          (engines/ort_backend.py)
    .engine .plan    -> TensorRTBackend     (engines/trt_backend.py, needs edgepose[trt])

Every backend takes a float32 batch (B, 3, H, W) of ANY size B >= 1, already
preprocessed with :func:`edgepose.preprocess.preprocess` using ``backend.meta``, and returns
``{"coords": (B, K, 2) float32 input pixels, "scores": (B, K) float32}``. Fitting B to
what the model was exported / built for (``batch_range``: a static batch, a TensorRT
profile) happens in one place, :meth:`Backend.__call__`; callers never chunk or pad.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta

def _torch_backend():
    from edgepose.engines.torch_backend import TorchBackend

    return TorchBackend


def _ort_backend():
    from edgepose.engines.ort_backend import OrtBackend

    return OrtBackend


def _trt_backend():
    from edgepose.engines.trt_backend import TensorRTBackend

    return TensorRTBackend


# suffix -> (runtime name, loader of the backend class); the loaders import lazily so a
# missing optional runtime only matters when a file of that kind is opened.
BACKENDS = {
    ".pt": ("torch", _torch_backend),
    ".pth": ("torch", _torch_backend),
    ".ckpt": ("torch", _torch_backend),
    ".onnx": ("onnxruntime", _ort_backend),
    ".engine": ("tensorrt", _trt_backend),
    ".plan": ("tensorrt", _trt_backend),
}
DEVICES = ("auto", "cpu", "cuda", "tensorrt")


def default_threads() -> int:
    """CPU intra-op threads when the user gives none: the cores this process may run on
    (its CPU affinity, which containers and taskset narrow), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


@dataclass
class BackendOptions:
    """Runtime options shared by all backends.

    ``device``: "auto" (GPU when the runtime has one, else CPU), "cpu", "cuda" (or "cuda:N")
    or "tensorrt" (ONNX Runtime's TensorRT execution provider). ``threads``: CPU intra-op
    threads (None = :func:`default_threads`).
    """

    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        base = self.device.split(":")[0]
        if base not in DEVICES:
            raise EngineError(f"unknown device {self.device!r}; choose one of {list(DEVICES)}")
        if self.threads is not None and int(self.threads) < 1:
            raise EngineError(f"threads must be >= 1, got {self.threads}")

    @property
    def cuda_index(self) -> int:
        parts = self.device.split(":")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def pad_batch(x: np.ndarray, size: int) -> np.ndarray:
    """(n, ...) -> (size, ...) for a model with a minimum (static) batch: the last item
    repeated (a real input, so the padded rows compute nothing unusual); the caller drops
    the extra outputs. ``size <= n`` returns ``x`` unchanged."""
    n = x.shape[0]
    if size <= n:
        return x
    return np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)])


class Backend(ABC):
    """A loaded model ready to run batches. Use as a context manager or call :meth:`close`.

    Attributes set by subclasses: ``meta`` (ModelMeta), ``name`` (e.g. "onnxruntime-cpu"),
    ``precision`` ("fp32"/"fp16"/"int8"), ``batch_range`` (min, max) batch sizes the
    runtime itself accepts; :meth:`__call__` fits any batch to it.
    """

    meta: ModelMeta
    name: str = "backend"
    precision: str = "fp32"
    batch_range: tuple[int, int] = (1, 1 << 30)
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(B, 3, H, W); B is -1 when any batch in ``batch_range`` is accepted."""
        lo, hi = self.batch_range
        h, w = self.meta.input_size
        return (lo if lo == hi else -1, 3, h, w)

    def check_batch(self, batch) -> np.ndarray:
        """Validate a (B, 3, H, W) float32 batch, B >= 1; returns it C-contiguous."""
        if not isinstance(batch, np.ndarray):
            raise EngineError(f"{self.name}: expected a numpy array, got {type(batch).__name__}")
        h, w = self.meta.input_size
        want = f"(B, 3, {h}, {w}) float32"
        if batch.ndim != 4 or batch.shape[1] != 3 or tuple(batch.shape[2:]) != (h, w):
            raise EngineError(
                f"{self.name} ({self.source}): expected a batch of shape {want}, got shape "
                f"{tuple(batch.shape)}; preprocess images with edgepose.preprocess.preprocess"
            )
        if batch.dtype != np.float32:
            raise EngineError(
                f"{self.name} ({self.source}): expected dtype float32, got {batch.dtype}; "
                "use batch.astype(np.float32)"
            )
        if batch.shape[0] < 1:
            raise EngineError(f"{self.name} ({self.source}): empty batch (0 crops)")
        return np.ascontiguousarray(batch)

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Any batch of B >= 1 crops -> B outputs. With ``batch_range`` (lo, hi) the runtime
        sees chunks of at most hi crops, a chunk short of lo (a static batch, a TensorRT
        profile's minimum) padded by :func:`pad_batch`, whose extra outputs are dropped;
        so each crop's output does not depend on how many were sent together."""
        batch = self.check_batch(batch)
        n = batch.shape[0]
        lo, hi = self.batch_range
        coords, scores = [], []
        for s in range(0, n, hi):
            chunk = batch[s:s + hi]
            m = chunk.shape[0]
            out = self._infer(np.ascontiguousarray(pad_batch(chunk, lo)))
            coords.append(np.asarray(out["coords"])[:m])
            scores.append(np.asarray(out["scores"])[:m])
        if len(coords) == 1:
            c, sc = coords[0], scores[0]
        else:
            c, sc = np.concatenate(coords), np.concatenate(scores)
        return {"coords": c.astype(np.float32, copy=False),
                "scores": sc.astype(np.float32, copy=False)}

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run a validated batch; return coords (B, K, 2) and scores (B, K)."""

    def warmup(self, n: int = 3, batch_size: int | None = None) -> None:
        """Run ``n`` batches of zeros so lazy allocation / autotuning happen before timing."""
        b = batch_size or self.batch_range[0]
        h, w = self.meta.input_size
        x = np.zeros((b, 3, h, w), dtype=np.float32)
        for _ in range(n):
            self(x)

    def close(self) -> None:
        """Release runtime resources. Safe to call twice."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.meta.name} {self.precision}>"


def runtime_of(path: str | os.PathLike) -> str:
    """Suffix -> runtime name ("torch", "onnxruntime", "tensorrt"); EngineError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in BACKENDS:
        raise EngineError(
            f"{path}: unknown model file type {suffix or '(no suffix)'!r}; expected one of "
            f"{sorted(BACKENDS)} (checkpoint, ONNX or TensorRT engine)")
    return BACKENDS[suffix][0]


def backend_class(path: str | os.PathLike):
    """Suffix -> backend class (imported lazily)."""
    runtime_of(path)
    return BACKENDS[Path(path).suffix.lower()][1]()


def is_server_url(path) -> bool:
    """Does ``path`` name a model on a Triton server rather than a file?"""
    return isinstance(path, str) and path.split("://")[0] in ("grpc", "http") and "://" in path


def load_backend(
    path: str | os.PathLike,
    device: str = "auto",
    threads: int | None = None,
    options: BackendOptions | None = None,
) -> Backend:
    """Open a checkpoint / ONNX / TensorRT engine as a :class:`Backend` chosen by suffix,
    or the model of a Triton server (``grpc://HOST:PORT[/MODEL]``, ``http://...``:
    :class:`edgepose.engines.triton_backend.TritonBackend`; device and threads are the
    server's then)."""
    if is_server_url(path):
        from edgepose.engines.triton_backend import TritonBackend

        return TritonBackend(str(path))
    from edgepose.bundled import NAMED_MODELS, resolve_model

    path = resolve_model(path)
    if isinstance(path, str) and not Path(path).suffix and not Path(path).exists():
        raise EngineError(f"{path}: no such model file or bundled model name; bundled names: "
                          f"{', '.join(sorted(NAMED_MODELS))}")
    opts = options or BackendOptions(device=device, threads=threads)
    cls = backend_class(path)
    if not Path(path).is_file():
        raise EngineError(f"{path}: model file not found")
    return cls(Path(path), opts)

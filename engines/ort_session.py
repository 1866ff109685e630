"""The one place an ONNX Runtime session is made (backends, detector, teacher, export
checks, benchmarks): threads, providers and graph options decided once.

``make_session(path, device, threads)`` -> ``onnxruntime.InferenceSession`` with
intra-op threads = ``threads`` (default: :func:`edgepose.engines.backend.default_threads`),
one inter-op thread, sequential execution, every graph optimisation, warnings off, and the
providers :func:`choose_providers` orders for ``device``. A file ONNX Runtime cannot load is
``EngineError`` naming it and ``what`` it should be. (The Triton worker keeps its own
three-line copy: it runs in the serving venv and imports nothing from edgepose.)
"""

from __future__ import annotations

import os

from edgepose.errors import EngineError

PROVIDER_NAMES = {
    "TensorrtExecutionProvider": "tensorrt",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Ordered ONNX Runtime providers for ``device`` given the ``available`` ones."""
    base = device.split(":")[0]
    wanted = {
        "cpu": ["CPUExecutionProvider"],
        "auto": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    }[base]
    if base in ("cuda", "tensorrt") and wanted[0] not in available:
        raise EngineError(
            f"device {device!r} needs ONNX Runtime's {wanted[0]}, but this onnxruntime has only "
            f"{available}; install onnxruntime-gpu or use device='cpu'"
        )
    return [p for p in wanted if p in available]


def make_session(path: str | os.PathLike, device: str = "cpu", threads: int | None = None,
                 what: str = "an ONNX model", hint: str = ""):
    """An ``onnxruntime.InferenceSession`` for ``path`` (module docstring)."""
    import onnxruntime as ort

    from edgepose.engines.backend import default_threads

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = int(threads or default_threads())
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    providers = choose_providers(device, ort.get_available_providers())
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=providers)
    except Exception as e:  # noqa: BLE001 - InvalidProtobuf, InvalidGraph, NoSuchFile, ...
        raise EngineError(f"{path}: ONNX Runtime cannot load this file as {what} "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:160]})"
                          + (f"; {hint}" if hint else "")) from None

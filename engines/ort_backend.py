"""ONNX Runtime backend for ``.onnx`` files written by ``edgepose export``.

Provider choice: ``device="auto"`` uses CUDA when this onnxruntime build has it, else the CPU
with ``threads`` intra-op threads; ``device="tensorrt"`` asks for ONNX Runtime's TensorRT
execution provider (falls back to CUDA, then CPU, for nodes it cannot take).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.errors import EngineError
from edgepose.engines.meta_io import meta_from_props
from edgepose.engines.backend import Backend, BackendOptions, default_threads

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


def check_input_shape(shape, meta, path) -> None:
    """The graph's image input (B, 3, H, W; any dimension may be symbolic) must be what its
    metadata says, checked at load: otherwise the first frame would fail deep in ONNX
    Runtime (or a server would start with it and fail on its first request)."""
    h, w = (int(v) for v in meta.input_size)
    want = (None, 3, h, w)
    dims = list(shape)
    bad = len(dims) != 4 or any(isinstance(d, int) and e is not None and d != e
                                for d, e in zip(dims, want))
    if bad:
        got = "x".join(str(d) if isinstance(d, int) else "?" for d in dims)
        raise EngineError(f"{path}: its image input is {got} but its metadata says "
                          f"Bx3x{h}x{w}; the file was changed after export or its metadata "
                          "belongs to another model: re-export it with 'edgepose export'")


class OrtBackend(Backend):
    """An ``onnxruntime.InferenceSession`` with inputs ``image`` and outputs coords/scores."""

    def __init__(self, path: Path, options: BackendOptions):
        import onnxruntime as ort

        self.source = str(path)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = int(options.threads or default_threads())
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        providers = choose_providers(options.device, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as e:  # InvalidProtobuf, InvalidGraph, Fail, NoSuchFile ...
            raise EngineError(
                f"{path}: ONNX Runtime cannot load this file ({type(e).__name__}: "
                f"{str(e)[:160]}); it may be truncated or not an ONNX model — re-export it "
                "with 'edgepose export'"
            ) from None
        self.meta = meta_from_props(self.session.get_modelmeta().custom_metadata_map, self.source)
        self.precision = self.meta.precision
        names = [i.name for i in self.session.get_inputs()]
        outs = [o.name for o in self.session.get_outputs()]
        if names != ["image"] or not {"coords", "scores"} <= set(outs):
            raise EngineError(
                f"{path}: expected input 'image' and outputs 'coords', 'scores', got inputs "
                f"{names} and outputs {outs}; re-export it with 'edgepose export'"
            )
        check_input_shape(self.session.get_inputs()[0].shape, self.meta, path)
        b = self.session.get_inputs()[0].shape[0]
        self.batch_range = (b, b) if isinstance(b, int) and b > 0 else (1, 1 << 30)
        provider = self.session.get_providers()[0]
        self.name = f"onnxruntime-{PROVIDER_NAMES.get(provider, provider)}"

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        coords, scores = self.session.run(["coords", "scores"], {"image": batch})
        return {"coords": coords, "scores": scores}

    def close(self) -> None:
        self.session = None

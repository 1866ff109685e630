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
from edgepose.engines.backend import Backend, BackendOptions
from edgepose.engines.ort_session import make_session

# one session factory for every ONNX Runtime user (engines/ort_session.py)
from edgepose.engines.ort_session import PROVIDER_NAMES, choose_providers  # noqa: E402,F401


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
        self.source = str(path)
        self.session = make_session(path, options.device, options.threads, "a pose model",
                                    "it may be truncated or not an ONNX model: re-export it "
                                    "with 'edgepose export'")
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

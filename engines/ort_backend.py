"""ONNX Runtime backend for ``.onnx`` files written by ``edgepose export``.

Provider choice: ``device="auto"`` uses CUDA when this onnxruntime build has it, else the CPU
with ``threads`` intra-op threads; ``device="tensorrt"`` asks for ONNX Runtime's TensorRT
execution provider (falls back to CUDA, then CPU, for nodes it cannot take).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.errors import EngineError
from edgepose.engines.meta_io import check_input_shape, meta_from_props
from edgepose.engines.backend import Backend, BackendOptions
# one session factory for every ONNX Runtime user
from edgepose.engines.ort_session import PROVIDER_NAMES, make_session


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

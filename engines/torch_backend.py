"""PyTorch eager backend: runs a checkpoint (``.pt``/``.pth``/``.ckpt``) directly.

The reference every exported artifact is compared with; slower than ONNX Runtime on small
CPU inputs (per-op overhead dominates, see DESIGN.md), but needs no export step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgepose.checkpoint import load_model
from edgepose.errors import DeviceError
from edgepose.engines.backend import Backend, BackendOptions


class TorchBackend(Backend):
    """``load_model`` + ``torch.inference_mode``; CUDA when asked for / available on auto."""

    def __init__(self, path: Path, options: BackendOptions):
        self.source = str(path)
        self.model, self.meta = load_model(path)
        from edgepose.distributed import torch_device

        # "tensorrt" (ONNX Runtime's provider) means "the GPU" for a checkpoint
        name = "cuda" if options.device.split(":")[0] == "tensorrt" else options.device
        try:
            self.device = torch_device(name, options.cuda_index)
        except DeviceError as e:
            raise DeviceError(f"{path}: {e}") from None
        use_cuda = self.device.type == "cuda"
        if options.threads is not None and not use_cuda:
            torch.set_num_threads(int(options.threads))  # process-wide in PyTorch
        self.model.to(self.device)
        self.precision = "fp32"
        self.name = f"torch-{self.device.type}"

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.model.predict_numpy(batch)

    def close(self) -> None:
        self.model = None

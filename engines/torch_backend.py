"""PyTorch eager backend: runs a checkpoint (``.pt``/``.pth``/``.ckpt``) directly.

The reference every exported artifact is compared with; slower than ONNX Runtime on small
CPU inputs (per-op overhead dominates, see DESIGN.md), but needs no export step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgepose.checkpoint import load_model
from edgepose.errors import EngineError
from edgepose.engines.backend import Backend, BackendOptions


class TorchBackend(Backend):
    """``load_model`` + ``torch.inference_mode``; CUDA when asked for / available on auto."""

    def __init__(self, path: Path, options: BackendOptions):
        self.source = str(path)
        self.model, self.meta = load_model(path)
        base = options.device.split(":")[0]
        use_cuda = base in ("cuda", "tensorrt") or (base == "auto" and torch.cuda.is_available())
        if use_cuda and not torch.cuda.is_available():
            raise EngineError(
                f"{path}: device {options.device!r} asked for but PyTorch sees no CUDA GPU; "
                "use device='cpu'")
        self.device = torch.device(f"cuda:{options.cuda_index}" if use_cuda else "cpu")
        if options.threads is not None and not use_cuda:
            torch.set_num_threads(int(options.threads))  # process-wide in PyTorch
        self.model.to(self.device)
        self.precision = "fp32"
        self.name = f"torch-{self.device.type}"

    @torch.inference_mode()
    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        coords, scores = self.model(x)
        return {"coords": coords.float().cpu().numpy(), "scores": scores.float().cpu().numpy()}

    def close(self) -> None:
        self.model = None

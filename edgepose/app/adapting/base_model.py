"""The model being adapted: its trainable weights, the ONNX users run today, its recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.errors import ModelError


@dataclass
class BaseModel:
    """The model being adapted: its trainable weights (``checkpoint``), the ONNX users run
    today (``onnx``, exported into the work folder when only a checkpoint is given) and its
    training config (for the augmentations and the replay sources)."""

    checkpoint: Path
    onnx: Path | None
    config: dict[str, Any]
    meta: Any


def resolve_base(model: str | None) -> BaseModel:
    """``None``: the bundled model and the weights shipped beside it; ``X.pt``: a
    checkpoint; ``X.onnx``: needs ``X.pt`` beside it (an ONNX file holds no trainable
    weights)."""
    from edgepose.bundled import DEFAULT_MODEL
    from edgepose.checkpoint import load_checkpoint

    path = Path(model) if model else DEFAULT_MODEL
    onnx = None
    if path.suffix.lower() == ".onnx":
        onnx, path = path, path.with_suffix(".pt")
        if not path.is_file():
            raise ModelError(f"{onnx}: an ONNX file holds no trainable weights and there is no "
                             f"{path.name} beside it; pass the checkpoint it was exported from "
                             "(--model runs/NAME/best.pt)")
    elif path.suffix.lower() not in (".pt", ".pth"):
        raise ModelError(f"{path}: adapt fine-tunes an edgepose checkpoint (.pt) or a bundled "
                         ".onnx with its .pt beside it")
    payload = load_checkpoint(path)
    config = payload.get("config")
    if not isinstance(config, dict):
        raise ModelError(f"{path}: has no training config (not written by 'edgepose train' "
                         "or 'edgepose weights pack'); adapt needs its recipe")
    return BaseModel(path, onnx, config, payload["meta"])


def before_onnx(base: BaseModel, work: Path, progress: bool = True) -> Path:
    """The ONNX the report calls "before": the given one, else the base checkpoint exported
    once into the work folder."""
    if base.onnx is not None:
        return base.onnx
    path = work / "base.onnx"
    if not path.is_file():
        from edgepose.engines.export import export_checkpoint

        export_checkpoint(base.checkpoint, path, progress=progress)
    return path

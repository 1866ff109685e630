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
    """``None``: the default bundled model; a bundled model's name; ``X.pt``: a checkpoint;
    ``X.onnx``: an edgepose ONNX, whose weights and recipe are read back from the file
    (:mod:`edgepose.engines.onnx_weights`), or from ``X.pt`` beside it where there is one."""
    from edgepose.bundled import DEFAULT_MODEL, resolve_model
    from edgepose.checkpoint import load_checkpoint

    path = Path(resolve_model(model)) if model else DEFAULT_MODEL
    onnx = None
    if path.suffix.lower() == ".onnx":
        onnx, path = path, path.with_suffix(".pt")
        if not onnx.is_file():
            raise ModelError(f"{onnx}: model file not found")
        if not path.is_file():
            from edgepose.engines.onnx_weights import derived_checkpoint
            from edgepose.errors import EngineError

            try:
                path = derived_checkpoint(onnx)
            except EngineError as e:
                raise ModelError(f"{e} (--model runs/NAME/best.pt)") from None
    elif path.suffix.lower() not in (".pt", ".pth"):
        raise ModelError(f"{path}: adapt fine-tunes an edgepose model (.onnx or .pt) or a "
                         "bundled model by name")
    payload = load_checkpoint(path)
    config = payload.get("config")
    if not isinstance(config, dict):
        raise ModelError(f"{onnx or path}: has no training config (not written by 'edgepose "
                         "train', 'edgepose weights pack' or an export of either); adapt "
                         "needs its recipe")
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

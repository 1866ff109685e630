"""Checkpoints: one torch file holding the model metadata, weights and training state.

Written atomically (temporary file in the same folder, then ``os.replace``) so a crash
mid-write never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgepose.errors import ModelError
from edgepose.fileio import atomic_write_bytes
from edgepose.metadata import ModelMeta

CHECKPOINT_FORMAT = "edgepose-checkpoint"


def save_checkpoint(path, model: torch.nn.Module, meta: ModelMeta, **state: Any) -> None:
    """Save weights + metadata (+ optimizer/scheduler/epoch/config... in ``state``)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "meta": meta.to_dict(),
        "model": model.state_dict(),
        **state,
    }
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path) -> dict[str, Any]:
    """Load and validate a checkpoint file; returns the payload with ``meta`` as ModelMeta."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, pickle garbage, wrong file type
        raise ModelError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:120]}); "
            "the file may be truncated or not an edgepose checkpoint"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not an edgepose checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    payload["meta"] = ModelMeta.from_dict(payload.get("meta"), source=str(path))
    return payload


def load_model(path, expect: ModelMeta | None = None):
    """Checkpoint -> (model in eval mode, meta). ``expect`` checks it is the right model."""
    from edgepose.models import build_model

    payload = load_checkpoint(path)
    meta: ModelMeta = payload["meta"]
    if expect is not None:
        expect.check_matches(meta, what=str(path))
    model = build_model(meta)
    load_weights(model, payload, path)
    model.eval()
    return model, meta


def load_weights(model: torch.nn.Module, payload: dict[str, Any], path) -> None:
    """Load a checkpoint payload's weights into ``model`` (ModelError naming ``path`` if
    they do not fit)."""
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise ModelError(
            f"{path}: weights do not fit the model its metadata describes ({str(e)[:160]})"
        ) from None


def pack_checkpoint(src, dst, fp16: bool = True, meta: ModelMeta | None = None,
                    **info: Any) -> dict[str, Any]:
    """A training checkpoint -> a small weights-only one (no optimiser/RNG state): what a
    model ships with for fine-tuning (``edgepose adapt``). Floating-point tensors are
    stored as FP16 when ``fp16`` (loading casts them back: ``load_state_dict`` copies into
    the model's FP32 parameters). Keeps ``config`` (the training recipe, e.g. its data
    sources for replay), ``epoch`` and ``best_metric``; ``info`` adds fields (source,
    licence); ``meta`` replaces the source's metadata (same network, e.g. with the
    adaptation record). Returns the summary written next to the weights."""
    payload = load_checkpoint(src)
    state = {k: (v.half() if fp16 and v.is_floating_point() else v)
             for k, v in payload["model"].items()}
    keep = {k: payload[k] for k in ("config", "epoch", "best_metric") if k in payload}
    if meta is not None:
        payload["meta"].check_matches(meta, what=f"pack_checkpoint({src})")
    out = {"format": CHECKPOINT_FORMAT, "meta": (meta or payload["meta"]).to_dict(), "model": state,
           "packed_from": Path(src).name, "fp16": bool(fp16), **keep, **info}
    atomic_write_bytes(dst, lambda f: torch.save(out, f))
    return {"tensors": len(state), "fp16": bool(fp16), **keep}

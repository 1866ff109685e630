"""Checkpoints: one torch file holding the model metadata, weights and training state.

Written atomically (temporary file in the same folder, then ``os.replace``) so a crash
mid-write never leaves a truncated checkpoint behind.

A checkpoint is data, never code: everything in it is tensors and plain Python values
(dicts, lists, tuples, str, numbers, None; metadata as its JSON dict), so it is read with
``torch.load(weights_only=True)``, whose unpickler refuses every other object. A ``.pt``
from a stranger cannot run anything when edgepose opens it. Files written before this
rule (they held numpy RNG state) or tampered with are refused with a one-line hint;
:func:`upgrade_checkpoint` converts such a copy once, on request -- still without running
anything: it allows exactly the numpy arrays, scalars and dtypes those files held.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
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
    _write(path, payload)


def plain(obj: Any) -> Any:
    """``obj`` as what ``torch.load(weights_only=True)`` reads back: numpy arrays become
    tensors, numpy scalars Python numbers, paths strings; containers are walked."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj).astype(
            np.int64 if obj.dtype.kind in "iu" else obj.dtype))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _write(path, payload: dict[str, Any]) -> None:
    data = plain(payload)
    atomic_write_bytes(path, lambda f: torch.save(data, f))


def _refuse_objects(path: Path) -> ModelError:
    return ModelError(
        f"{path}: holds Python objects besides tensors and plain data (an edgepose checkpoint "
        "written before checkpoints became plain data, or a tampered file); edgepose never unpickles them. If you trust "
        f"where this copy came from, convert it once: edgepose weights upgrade {path} "
        "--out NEW.pt --trust")


def load_checkpoint(path) -> dict[str, Any]:
    """Load and validate a checkpoint file; returns the payload with ``meta`` as ModelMeta.

    Only tensors and plain data are unpickled (``weights_only=True``): a file that holds
    anything else is refused before any of it is constructed."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise _refuse_objects(path) from None
        raise _unreadable(path, e) from None
    except Exception as e:  # truncated zip, pickle garbage, wrong file type
        raise _unreadable(path, e) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not an edgepose checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    payload["meta"] = ModelMeta.from_dict(payload.get("meta"), source=str(path))
    return payload


def _unreadable(path: Path, e: Exception) -> ModelError:
    return ModelError(
        f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
        "the file may be truncated or not an edgepose checkpoint")


def _old_format_globals() -> list:
    """What checkpoints written before the plain-data rule pickled besides tensors: numpy
    arrays (RNG state), numpy scalars (metrics) and their dtypes -- under numpy 2's and
    numpy 1's module names -- and nothing else."""
    from numpy._core import multiarray

    dtypes = [type(np.dtype(t)) for t in ("u4", "i8", "i4", "f4", "f8", "?")]
    numpy1 = [(f, f"numpy.core.multiarray.{f.__name__}")
              for f in (multiarray._reconstruct, multiarray.scalar)]
    return [np.ndarray, np.dtype, *dtypes, multiarray._reconstruct, multiarray.scalar, *numpy1]


def upgrade_checkpoint(src, dst) -> dict[str, Any]:
    """Rewrite an older checkpoint (one that pickled numpy RNG state) as plain data.

    Loaded with ``weights_only=True`` plus exactly the numpy types those files held
    (:func:`_old_format_globals`): a file with any other object is refused as
    :func:`load_checkpoint` refuses it, so even this path runs nothing from the file
    (``edgepose weights upgrade --trust``). The result loads with plain
    ``weights_only=True``; returns what was converted."""
    src = Path(src)
    if not src.is_file():
        raise ModelError(f"{src}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_old_format_globals()):
            payload = torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise ModelError(f"{src}: holds Python objects that no edgepose checkpoint ever "
                             "held (a tampered file?); not converted") from None
        raise _unreadable(src, e) from None
    except Exception as e:
        raise _unreadable(src, e) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{src}: not an edgepose checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    ModelMeta.from_dict(payload.get("meta"), source=str(src))
    _write(dst, payload)
    load_checkpoint(dst)  # the rewritten file must load the safe way
    return {"keys": sorted(payload)}


def load_model(path, expect: ModelMeta | None = None):
    """Checkpoint -> (model in eval mode, meta). ``expect`` checks it is the right model."""
    payload = load_checkpoint(path)
    meta: ModelMeta = payload["meta"]
    if expect is not None:
        expect.check_matches(meta, what=str(path))
    return model_from_payload(payload, path), meta


def model_from_payload(payload: dict[str, Any], path):
    """A loaded checkpoint payload (:func:`load_checkpoint`) -> its model in eval mode."""
    from edgepose.models import build_model

    model = build_model(payload["meta"])
    load_weights(model, payload, path)
    return model.eval()


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
    _write(dst, out)
    return {"tensors": len(state), "fp16": bool(fp16), **keep}


def soup_checkpoints(srcs, dst) -> dict[str, Any]:
    """A uniform model soup (Wortsman et al., ICML 2022): the element-wise mean of the
    weights of several trainings of ONE network that started from the same weights (here:
    seeds of one recipe on MoveNet's trunk), written as a weights-only checkpoint at
    ``dst``. Integer buffers (BatchNorm's step count) come from the first; the metadata and
    training config too, with ``soup_of`` naming the files. A file of another network (a
    different head, size, skeleton...) is refused in one line. Returns a summary."""
    srcs = [Path(s) for s in srcs]
    if len(srcs) < 2:
        raise ModelError(f"a soup needs at least two checkpoints, got {len(srcs)}")
    first = load_checkpoint(srcs[0])
    states = [first["model"]]
    for src in srcs[1:]:
        payload = load_checkpoint(src)
        first["meta"].check_matches(payload["meta"], what=str(src))
        if set(payload["model"]) != set(first["model"]):
            raise ModelError(f"{src}: its weights are not {srcs[0]}'s (other tensor names)")
        states.append(payload["model"])
    mean = {}
    for k, v in first["model"].items():
        if v.is_floating_point():
            mean[k] = (sum(s[k].double() for s in states) / len(states)).to(v.dtype)
        else:
            mean[k] = v
    keep = {k: first[k] for k in ("config",) if k in first}
    _write(dst, {"format": CHECKPOINT_FORMAT, "meta": first["meta"].to_dict(), "model": mean,
                 "soup_of": [s.name if s.parent == srcs[0].parent else str(s) for s in srcs],
                 **keep})
    return {"tensors": len(mean), "ingredients": len(srcs)}

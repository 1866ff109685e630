"""An exported model's trainable weights and training recipe, read back from its ONNX file.

edgepose exports with the TorchScript exporter, which keeps the parameters and buffers of a
model without BatchNorm (the MoveNet trunk and every head built on it: all bundled models)
as ONNX initializers under their state-dict names, except a ``nn.Linear`` weight applied to
a 3-D input, stored transposed as its MatMul's constant (found back by the node's scope
name). Checked bit for bit by tests/models/test_onnx_weights.py. A BatchNorm backbone is
folded into its convolutions on export: its file cannot give the checkpoint back, and
:func:`checkpoint_from_onnx` says so in one line. An export from a checkpoint
stores the checkpoint's training config under :data:`RECIPE_KEY`. So one ONNX file is
enough to fine-tune: the bundled models ship one file each, and ``edgepose adapt`` and
``edgepose weights unpack`` derive the checkpoint when they need it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from edgepose.engines.meta_io import load_onnx, meta_from_props, set_prop
from edgepose.errors import EngineError

RECIPE_KEY = "edgepose_recipe"
# buffers a checkpoint has and an inference graph need not (BatchNorm's step counter)
_OPTIONAL = ("num_batches_tracked",)


def set_recipe(model_proto, config: dict[str, Any] | None) -> None:
    """Store the training ``config`` (JSON) in ``metadata_props[RECIPE_KEY]`` (replacing an
    existing entry; None removes it)."""
    set_prop(model_proto, RECIPE_KEY,
             None if config is None else json.dumps(config, sort_keys=True))


def read_recipe(model_proto) -> dict[str, Any] | None:
    """The training config stored by :func:`set_recipe`, or None."""
    for p in model_proto.metadata_props:
        if p.key == RECIPE_KEY:
            try:
                value = json.loads(p.value)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def checkpoint_from_onnx(onnx_path, out) -> Path:
    """Write the checkpoint ``out`` (.pt: weights, metadata and, when the file has one, its
    training config) that ``onnx_path`` was exported from. One-line :class:`EngineError`
    when the file does not hold the model's weights under their names (an ONNX from
    another exporter, or constant-folded)."""
    import numpy as np
    import torch
    from onnx import numpy_helper

    from edgepose.checkpoint import save_checkpoint
    from edgepose.models import build_model

    onnx_path = Path(onnx_path)
    proto = load_onnx(onnx_path, weights=True)
    meta = meta_from_props({p.key: p.value for p in proto.metadata_props}, str(onnx_path))
    model = build_model(meta)
    own = model.state_dict()
    inits = {t.name: t for t in proto.graph.initializer}
    arrays = {k: np.array(numpy_helper.to_array(inits[k])) for k in own if k in inits}
    for k in own:
        if k not in arrays and own[k].ndim == 2:
            found = _transposed_linear(proto, inits, k, tuple(own[k].shape))
            if found is not None:
                arrays[k] = found
    missing = [k for k in own if k not in arrays and not k.endswith(_OPTIONAL)]
    if missing:
        raise EngineError(f"{onnx_path}: holds {len(own) - len(missing)} of the model's "
                          f"{len(own)} weight tensors under their names (missing e.g. "
                          f"{missing[0]!r}); fine-tune from the checkpoint it was exported "
                          "from instead")
    state = {}
    for k, v in own.items():
        if k not in arrays:
            state[k] = v
            continue
        arr = arrays[k]
        if tuple(arr.shape) != tuple(v.shape):
            raise EngineError(f"{onnx_path}: weight {k!r} has shape {list(arr.shape)}, the "
                              f"model described by its metadata needs {list(v.shape)}")
        state[k] = torch.from_numpy(arr).to(v.dtype)
    model.load_state_dict(state)
    extra = {}
    recipe = read_recipe(proto)
    if recipe is not None:
        extra["config"] = recipe
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model, meta, **extra)
    return out


def _transposed_linear(proto, inits, key: str, shape: tuple[int, int]):
    """A ``nn.Linear`` weight (out, in) that the exporter stored transposed, (in, out), as
    the constant input of its MatMul: the exporter names that node by the module's scope
    (``/head/z_proj/MatMul`` for ``head.mlp.z_proj``), so the node whose scope ends with
    the module's own name and whose every scope part is part of the module path holds it.
    None unless exactly one such node has a constant of the transposed shape."""
    from onnx import numpy_helper

    parts = key.rsplit(".", 1)[0].split(".")
    own = ".".join(parts[-2:]) if parts[-1].isdigit() else parts[-1]
    path = set(parts) | {".".join(parts[i:i + 2]) for i in range(len(parts) - 1)}
    hits = []
    for node in proto.graph.node:
        scope = node.name.strip("/").split("/")[:-1]
        if node.op_type != "MatMul" or not scope or scope[-1] != own \
                or not set(scope) <= path:
            continue
        for name in node.input:
            if name in inits and tuple(inits[name].dims) == shape[::-1]:
                hits.append(name)
    if len(set(hits)) != 1:
        return None
    import numpy as np

    return np.ascontiguousarray(numpy_helper.to_array(inits[hits[0]]).T)


def derived_checkpoint(onnx_path) -> Path:
    """The checkpoint of ``onnx_path``, derived once per file content into the system's
    temporary folder (``edgepose-derived/<stem>-<sha256 prefix>.pt``) and reused."""
    onnx_path = Path(onnx_path)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / "edgepose-derived" / f"{onnx_path.stem}-{digest}.pt"
    if not out.is_file():
        tmp = out.with_suffix(".partial.pt")
        checkpoint_from_onnx(onnx_path, tmp)
        tmp.replace(out)
    return out

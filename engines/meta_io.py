"""Model metadata in and out of every artifact: one writer per format, one reader for all.

============  ==========================================  ==============================
artifact      where the metadata JSON lives                written by
============  ==========================================  ==============================
checkpoint    ``payload["meta"]`` (torch file)             ``edgepose.checkpoint``
ONNX          ``metadata_props[METADATA_KEY]``             :func:`set_onnx_meta`
engine        length-prefixed JSON header before the plan  ``plan_format.write_plan``
============  ==========================================  ==============================

:func:`read_meta` picks the reader from the file suffix with the same table as
``load_backend`` (:data:`edgepose.engines.backend.BACKENDS`), and every failure - missing
file, corrupt file, no edgepose metadata, metadata from another edgepose - is one
:class:`EngineError` naming the file. Only checkpoints need torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from edgepose.errors import EdgeposeError, EngineError
from edgepose.metadata import ModelMeta

METADATA_KEY = "edgepose"
NO_META = "has no edgepose metadata; export it with 'edgepose export CKPT --out model.onnx'"


def set_prop(model_proto, key: str, value: str | None) -> None:
    """Set ``metadata_props[key]`` to ``value``, replacing an existing entry (None removes
    it)."""
    keep = [p for p in model_proto.metadata_props if p.key != key]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(keep)
    if value is not None:
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def set_onnx_meta(model_proto, meta: ModelMeta) -> None:
    """Store ``meta`` JSON in ``metadata_props[edgepose]`` (replacing an existing entry)."""
    set_prop(model_proto, METADATA_KEY, meta.to_json())
    model_proto.doc_string = f"edgepose {meta.name} ({meta.precision})"


def meta_from_props(props: Mapping[str, str], source: str) -> ModelMeta:
    """ModelMeta from ONNX metadata properties (a ModelProto's or an ORT session's)."""
    if METADATA_KEY not in props:
        if "edgepose_detector" in props:  # engines.detector.META_KEY (no import: a cycle)
            raise EngineError(f"{source} is a person detector, not a pose model; give it as "
                              "--detector FILE (with --multi) and a pose model as --model")
        raise EngineError(f"{source}: ONNX file {NO_META}")
    try:
        return ModelMeta.from_json(props[METADATA_KEY], source=source)
    except EdgeposeError as e:
        raise EngineError(str(e)) from None


def load_onnx(model_or_path, weights: bool = False):
    """The one ONNX loader: the ``onnx.ModelProto`` in a file. ``weights=False`` reads the
    graph and metadata only (external weight files are not opened); ``weights=True`` loads
    everything, to modify and save the model. A ModelProto is returned as it is.
    EngineError, naming the file, when it is not a readable ONNX file."""
    if not isinstance(model_or_path, (str, os.PathLike)):
        return model_or_path
    import onnx

    try:
        return onnx.load(str(model_or_path), load_external_data=weights)
    except Exception as e:
        raise EngineError(f"{model_or_path}: not a readable ONNX file ({type(e).__name__}); "
                          "re-export it with 'edgepose export'") from None


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


def _onnx(path: Path) -> ModelMeta:
    """Metadata of an ONNX pose model, checked against the graph's own ``image`` input
    (so run, predict, eval, calibrate and serve refuse an edited file before any work)."""
    proto = load_onnx(path)
    meta = meta_from_props({p.key: p.value for p in proto.metadata_props}, str(path))
    inp = next((i for i in proto.graph.input if i.name == "image"), None)
    if inp is not None:
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param
                for d in inp.type.tensor_type.shape.dim]
        check_input_shape(dims, meta, path)
    return meta


def _checkpoint(path: Path) -> ModelMeta:
    from edgepose.checkpoint import load_checkpoint

    return load_checkpoint(path)["meta"]


def _engine(path: Path) -> ModelMeta:
    from edgepose.engines.plan_format import read_plan

    return read_plan(path).meta


READERS = {"torch": _checkpoint, "onnxruntime": _onnx, "tensorrt": _engine}


def read_meta(path: str | os.PathLike) -> ModelMeta:
    """The ModelMeta of a checkpoint, ONNX file or TensorRT engine (by suffix)."""
    from edgepose.bundled import resolve_model
    from edgepose.engines.backend import runtime_of

    path = Path(resolve_model(path))
    runtime = runtime_of(path)
    if not path.is_file():
        raise EngineError(f"{path}: model file not found")
    try:
        return READERS[runtime](path)
    except EngineError:
        raise
    except EdgeposeError as e:  # e.g. ModelError from a corrupt checkpoint
        raise EngineError(str(e)) from None

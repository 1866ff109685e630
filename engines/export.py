"""Checkpoint -> ONNX with decoding inside the graph, metadata in ``metadata_props``, and a
parity check against PyTorch that fails loudly.

Graph contract (all heads)::

    input   image   (B, 3, H, W) float32, preprocessed with edgepose.preprocess (B dynamic
                    unless --static-batch)
    output  coords  (B, K, 2) float32, input pixels (edgepose.coords convention)
    output  scores  (B, K)    float32

The file is written to a temporary name and only renamed to ``out`` once ``onnx.checker``
and the ONNX Runtime vs PyTorch parity check pass, so a failed export never leaves a file
that looks usable.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.fileio import publish
from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta
from edgepose.engines.meta_io import load_onnx, read_meta, set_onnx_meta, set_prop

INPUT_NAME = "image"
OUTPUT_NAMES = ("coords", "scores")
MIN_OPSET = 17


@dataclass
class ExportOptions:
    """How to export. ``static_batch``: fixed batch size (None = dynamic batch).
    ``decoder``: decoder settings overriding the checkpoint's (e.g. NerPE search).
    ``tol_px``: max |coords| difference ONNX Runtime vs PyTorch, in input pixels;
    ``tol_score``: max |scores| difference."""

    opset: int = 17
    static_batch: int | None = None
    decoder: dict[str, Any] | None = None
    simplify: bool = False
    parity: bool = True
    tol_px: float = 1e-3
    tol_score: float = 1e-3
    parity_batch: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.opset < MIN_OPSET:
            raise EngineError(f"opset {self.opset} is too old; use --opset {MIN_OPSET} or newer")
        if self.static_batch is not None and self.static_batch < 1:
            raise EngineError(f"--static-batch must be >= 1, got {self.static_batch}")
        if not (self.tol_px > 0 and self.tol_score > 0):
            raise EngineError(f"parity tolerances must be > 0, got --tol-px {self.tol_px} "
                              f"and a score tolerance of {self.tol_score}")


@dataclass
class ParityResult:
    """Worst differences ONNX Runtime vs PyTorch over one set of inputs."""

    inputs: str  # "random" or "images"
    max_coord_px: float
    max_score: float
    worst_joint: int


@dataclass
class ExportReport:
    path: Path
    meta: ModelMeta
    parity: list[ParityResult] = field(default_factory=list)
    simplified: bool = False
    nodes: int = 0


# ----------------------------------------------------------------------------- decoder option


PROGRESSIVE_FIELDS = ("coarse", "r", "overlap", "steps")


def parse_decoder_spec(spec: str) -> dict[str, Any]:
    """CLI decoder string -> decoder dict (NerPE ``DecoderSettings`` keys).

    ``dense:64`` -> {"mode": "dense", "resolution": 64};
    ``progressive:32,4,2,1`` -> {"mode": "progressive", "coarse": 32, "r": 4, "overlap": 2,
    "steps": 1} (trailing values may be left out to keep the model's own).
    """
    mode, _, arg = spec.partition(":")
    try:
        values = [int(v) for v in arg.split(",") if v.strip()]
    except ValueError:
        values = []
    if mode == "dense" and len(values) == 1 and values[0] > 0:
        return {"mode": "dense", "resolution": values[0]}
    if mode == "progressive" and 1 <= len(values) <= 4 and all(v >= 0 for v in values):
        return {"mode": "progressive", **dict(zip(PROGRESSIVE_FIELDS, values))}
    raise EngineError(
        f"cannot read decoder {spec!r}; use e.g. 'dense:64' or 'progressive:32,4,2,1' "
        "(coarse grid, refinement factor r, window overlap, steps)"
    )


# ----------------------------------------------------------------------------- parity inputs


def random_inputs(meta: ModelMeta, batch: int, seed: int = 0) -> np.ndarray:
    """(B, 3, H, W) float32 standard-normal inputs (roughly what normalised images look like)."""
    h, w = meta.input_size
    return np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)


def synthetic_images(meta: ModelMeta, batch: int, seed: int = 0) -> np.ndarray:
    """(B, 3, H, W) float32: synthetic people (:mod:`edgepose.data.synthetic`) cropped by
    their boxes through :func:`edgepose.preprocess.preprocess`, exactly as the app feeds a
    model."""
    from edgepose.data.synthetic import SynthConfig, render_scene
    from edgepose.topdown import PersonBoxes
    from edgepose.preprocess import preprocess

    rng = np.random.default_rng(seed)
    cfg = SynthConfig(image_size=(256, 256), max_people=1)
    out = []
    for _ in range(batch):
        img, people = render_scene(rng, cfg)
        where = PersonBoxes.of(img, [people[0].bbox] if people else None)
        (box,), (pad,) = where.boxes, where.paddings
        out.append(preprocess(img, box, meta, pad)[0])
    return np.stack(out).astype(np.float32)


def compare_outputs(ref: dict, got: dict, inputs: str) -> ParityResult:
    """Max |difference| of coords (px) and scores between two output dicts."""
    dc = np.abs(np.asarray(ref["coords"], np.float64) - np.asarray(got["coords"], np.float64))
    ds = np.abs(np.asarray(ref["scores"], np.float64) - np.asarray(got["scores"], np.float64))
    per_joint = dc.max(axis=(0, 2)) if dc.size else np.zeros(1)
    return ParityResult(inputs, float(dc.max(initial=0.0)), float(ds.max(initial=0.0)),
                        int(per_joint.argmax()))


def torch_outputs(model, batch: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    with torch.inference_mode():
        coords, scores = model(torch.from_numpy(batch))
    return {"coords": coords.float().numpy(), "scores": scores.float().numpy()}


def ort_outputs(path: str | os.PathLike, batch: np.ndarray) -> dict[str, np.ndarray]:
    from edgepose.engines.ort_session import make_session

    sess = make_session(path, "cpu", what="an exported pose model")
    coords, scores = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
    return {"coords": coords, "scores": scores}


def check_parity(path, model, meta: ModelMeta, opts: ExportOptions,
                 label=None) -> list[ParityResult]:
    """ONNX Runtime vs PyTorch on random inputs and on synthetic images; EngineError above
    ``opts.tol_px`` / ``opts.tol_score``, naming ``label`` (the user's file; default
    ``path``) rather than a temporary file."""
    b = opts.static_batch or opts.parity_batch
    results = []
    for kind, batch in (("random", random_inputs(meta, b, opts.seed)),
                        ("images", synthetic_images(meta, b, opts.seed))):
        r = compare_outputs(torch_outputs(model, batch), ort_outputs(path, batch), kind)
        results.append(r)
        if r.max_coord_px > opts.tol_px or r.max_score > opts.tol_score:
            raise EngineError(
                f"{label or path}: ONNX Runtime disagrees with PyTorch on {kind} inputs (coords off by "
                f"{r.max_coord_px:.3g} px at joint {r.worst_joint}, scores by {r.max_score:.3g}; "
                f"tolerance {opts.tol_px} px / {opts.tol_score}); report this with the "
                "checkpoint, or try another --opset"
            )
    return results


# ----------------------------------------------------------------------------- ONNX helpers


def simplify_onnx(path, meta: ModelMeta) -> int:
    """Simplify ``path`` in place with onnxslim; returns the node count after."""
    try:
        import onnxslim
    except ImportError:
        raise EngineError("--simplify needs onnxslim: pip install 'edgepose[simplify]'") from None
    import onnx

    proto = load_onnx(path, weights=True)
    props = [(p.key, p.value) for p in proto.metadata_props]  # the recipe too
    slim = onnxslim.slim(proto)
    for key, value in props:
        set_prop(slim, key, value)
    set_onnx_meta(slim, meta)
    onnx.save(slim, str(path))
    return len(slim.graph.node)


def topo_sort(graph) -> None:
    """Reorder ``graph.node`` in place so every node comes after its inputs' producers
    (the float16 converter appends its I/O Cast nodes at the end)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # outer-scope names (subgraphs): keep original order
            ordered += rest
            break
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def to_fp16_onnx(src, dst) -> None:
    """FP16 copy of an fp32 ONNX for strongly typed TensorRT (11.x): weights and compute in
    float16, I/O kept float32 (Cast nodes at the boundary). Uses the float16 converter that
    ships with onnxruntime. Metadata precision becomes "fp16"."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    meta = read_meta(src)
    proto = load_onnx(src, weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=False)
    topo_sort(half.graph)
    set_onnx_meta(half, dataclasses.replace(meta, precision="fp16"))
    onnx.checker.check_model(half)
    onnx.save(half, str(dst))


# ----------------------------------------------------------------------------- export


def _torch_export(model, meta: ModelMeta, path: str, opts: ExportOptions) -> None:
    import torch

    b = opts.static_batch or 1
    h, w = meta.input_size
    dummy = torch.zeros(b, 3, h, w)
    dynamic = None
    if opts.static_batch is None:
        dynamic = {n: {0: "batch"} for n in (INPUT_NAME, *OUTPUT_NAMES)}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), path, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic, opset_version=opts.opset, do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter handles these graphs and keeps names
        )


def export_model(model, meta: ModelMeta, out, opts: ExportOptions | None = None,
                 progress: bool = True, recipe: dict | None = None) -> ExportReport:
    """Export an eval-mode PoseModel (forward -> coords, scores) to ``out`` and verify it.
    ``recipe``: the training config, stored in the file so it can be fine-tuned from it
    alone (:mod:`edgepose.engines.onnx_weights`)."""
    import onnx
    from tqdm import tqdm

    opts = opts or ExportOptions()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dataclasses.replace(meta, precision="fp32")
    model.eval()
    steps = ["export", "check", "parity"] + (["simplify", "parity"] if opts.simplify else [])
    bar = tqdm(steps, desc=f"export {out.name}", disable=not progress, leave=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".onnx", dir=out.parent)
    os.close(fd)
    report = ExportReport(path=out, meta=meta)
    try:
        for step in bar:
            bar.set_postfix_str(step)
            if step == "export":
                _torch_export(model, meta, tmp, opts)
                proto = load_onnx(tmp, weights=True)
                set_onnx_meta(proto, meta)
                if recipe is not None:
                    from edgepose.engines.onnx_weights import set_recipe

                    set_recipe(proto, recipe)
                onnx.save(proto, tmp)
            elif step == "check":
                try:
                    onnx.checker.check_model(tmp, full_check=True)
                except onnx.checker.ValidationError as e:
                    raise EngineError(f"{out}: exported graph fails onnx.checker ({e})") from None
            elif step == "parity" and opts.parity:
                report.parity += check_parity(tmp, model, meta, opts, label=out)
            elif step == "simplify":
                simplify_onnx(tmp, meta)
                report.simplified = True
        report.nodes = len(load_onnx(tmp).graph.node)
        publish(tmp, out)
    finally:
        bar.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return report


def export_checkpoint(ckpt, out, opts: ExportOptions | None = None,
                      progress: bool = True) -> ExportReport:
    """Checkpoint file -> verified ONNX. ``opts.decoder`` overrides the decoder settings."""
    from edgepose.checkpoint import load_checkpoint, model_from_payload

    opts = opts or ExportOptions()
    payload = load_checkpoint(ckpt)
    recipe = payload.get("config") if isinstance(payload.get("config"), dict) else None
    if not opts.decoder:
        return export_model(model_from_payload(payload, ckpt), payload["meta"], out, opts,
                            progress, recipe=recipe)
    from edgepose.models import build_model

    if payload["meta"].head != "nerpe":
        raise EngineError(f"{ckpt}: --decoder applies to NerPE models only; this is a "
                          f"{payload['meta'].head} model (its decoding is fixed): drop --decoder")
    meta = dataclasses.replace(payload["meta"], decoder={**payload["meta"].decoder, **opts.decoder})
    model = build_model(meta)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise EngineError(f"{ckpt}: decoder {opts.decoder} does not fit this model ({str(e)[:160]})") from None
    return export_model(model.eval(), meta, out, opts, progress, recipe=recipe)

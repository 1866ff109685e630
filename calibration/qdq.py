"""Explicit INT8 quantization: an FP32 ONNX -> a Q/DQ ONNX with ONNX Runtime ``quantize_static``.

The result runs INT8 on the CPU in ONNX Runtime (DQ -> Conv -> Q is fused into QLinearConv)
and is the explicit-quantization input TensorRT 10/11 builds INT8 engines from. TensorRT
only accepts *symmetric* quantizers (zero-point 0), so activations and weights are both
signed INT8 with ``ActivationSymmetric`` / ``WeightSymmetric``; weights are per channel.

Only the backbone + neck are quantized. The head's decoding tail (DSNT softmax +
expectation, heatmap argmax + sub-pixel shift, NerPE MLP search) stays float: quantizing a
softmax over logits or a coordinate expectation costs accuracy for no speed. Head nodes are
found by their PyTorch module path (``/head/...`` node names from the TorchScript exporter,
``pkg.torch.onnx.name_scopes`` from the dynamo exporter); without those, every node from the
last Conv/Gemm/MatMul on is excluded (:func:`head_nodes`).
"""

from __future__ import annotations

import ast
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.engines.int8 import has_qdq, qdq_problems, static_batch
from edgepose.engines.meta_io import load_onnx, set_onnx_meta
from edgepose.errors import CalibrationError, DataError
from edgepose.metadata import ModelMeta

METHODS = ("minmax", "entropy", "percentile")
QUANT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Head submodules that are feature necks (quantized with the backbone when asked).
NECK_MODULES = ("neck", "adapter")
# Shape/elementwise ops that may also run in INT8 between quantized convs (opt-in:
# fewer Q/DQ round trips, sometimes faster, slightly more error).
EXTRA_OPS = ("Add", "Mul", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
             "Concat", "Resize", "HardSigmoid", "HardSwish", "Sigmoid")


@dataclass
class QuantConfig:
    """Settings of :func:`quantize_qdq`.

    ``method``: activation range estimate — "minmax" (full range), "entropy" (KL divergence,
    like TensorRT's entropy calibrator) or "percentile" (``percentile`` % of |x|).
    ``op_types``: node types to quantize in the backbone + neck. ``exclude_head``: keep the
    head's nodes float; ``quantize_neck``: except the head's upsampling neck / grid adapter
    (its last conv and decoder stay float either way). ``preprocess``: run
    ``quant_pre_process`` (shape inference) first.
    ``symmetric``: signed INT8 activations with zero-point 0 (what TensorRT needs; the
    default). ``symmetric=False`` writes asymmetric uint8 activations instead: ONNX Runtime's
    x86 kernels want uint8 activations and fuse every DQ -> Conv -> Q into QLinearConv,
    which is what makes INT8 faster than FP32 on a CPU — but TensorRT cannot use that file.
    """

    method: str = "minmax"
    per_channel: bool = True
    percentile: float = 99.999
    op_types: tuple[str, ...] = QUANT_OPS
    exclude_head: bool = True
    extra_exclude: list[str] = field(default_factory=list)
    preprocess: bool = True
    dedicated_pairs: bool = True
    quantize_neck: bool = False
    symmetric: bool = True

    def __post_init__(self) -> None:
        self.method = self.method.lower()
        if self.method not in METHODS:
            raise CalibrationError(
                f"unknown calibration method {self.method!r}; choose one of {list(METHODS)}"
            )
        if not 90.0 <= float(self.percentile) < 100.0:  # checked before any calibration runs
            raise CalibrationError(f"--percentile {self.percentile}: use a value in "
                                   "[90, 100), e.g. 99.999")


# ----------------------------------------------------------------------------- graph analysis


def _name_scopes(node) -> list[str]:
    """Module path of a node from the dynamo exporter's metadata (empty if absent)."""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                return [str(s) for s in ast.literal_eval(p.value)]
            except (ValueError, SyntaxError):
                return []
    return []


def module_path(node) -> list[str]:
    """PoseModel module path of a node, e.g. ["head", "neck", "neck.0"] ([] if unknown).

    TorchScript exporter: the node name ("/head/neck/neck.0/ConvTranspose"); dynamo
    exporter: ``pkg.torch.onnx.name_scopes`` (["", "head", "head.neck", ...]).
    """
    if node.name.startswith("/"):
        return node.name.split("/")[1:-1]
    scopes = _name_scopes(node)
    return [s.split(".")[-1] for s in scopes[1:-1]]


def is_head_node(node, keep_neck: bool = False) -> bool:
    """True for nodes of PoseModel's ``head`` submodule. ``keep_neck``: except its
    feature neck (``head.neck`` of heatmap/DSNT, ``head.adapter`` of NerPE), which is
    ordinary convolution work like the backbone's."""
    path = module_path(node)
    if not path or path[0] != "head":
        return False
    return not (keep_neck and len(path) > 1 and path[1] in NECK_MODULES)


def head_nodes(graph, keep_neck: bool = False) -> list[str]:
    """Names of the nodes to keep in float: the head's decoder (by module path), else the tail.

    Fallback when no node carries a module path: every node from the last
    Conv/ConvTranspose/Gemm/MatMul that feeds the head's decoder onward, in graph
    (topological) order — the decoder always follows the last learned layer.
    """
    tagged = [n.name for n in graph.node if is_head_node(n, keep_neck)]
    if tagged:
        return tagged
    nodes = list(graph.node)
    last = max((i for i, n in enumerate(nodes) if n.op_type in QUANT_OPS), default=None)
    if last is None:
        return []
    return [n.name for n in nodes[last:] if n.name]


def _ensure_node_names(model) -> None:
    """Give unnamed nodes unique names (exclusion lists work by name)."""
    seen = {n.name for n in model.graph.node if n.name}
    for i, n in enumerate(model.graph.node):
        if not n.name:
            name = f"{n.op_type}_ep{i}"
            while name in seen:
                name += "_"
            n.name = name
            seen.add(name)


# ----------------------------------------------------------------------------- data reader


def make_reader(batches: Iterable[np.ndarray], input_name: str, fixed_batch: int | None):
    """A ``CalibrationDataReader`` over (B, 3, H, W) batches.

    Every batch fed has one size (ORT's histogram calibrators stack them): the model's
    static batch size ``fixed_batch`` if it has one, else the first batch's size; a short
    last batch is dropped.
    """
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = self._gen()

        def _gen(self):
            size = fixed_batch
            for b in batches:
                b = np.ascontiguousarray(b, dtype=np.float32)
                size = size or len(b)  # the first (full) batch sets the size
                for i in range(0, len(b) - size + 1, size):
                    yield {input_name: b[i:i + size]}

        def get_next(self):
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = self._gen()

    return _Reader()


# ----------------------------------------------------------------------------- quantize


def cpu_config(method: str = "minmax") -> QuantConfig:
    """The ONNX Runtime CPU preset: uint8 activations, elementwise ops quantized too."""
    return QuantConfig(method=method, symmetric=False, op_types=QUANT_OPS + EXTRA_OPS)


def target_config(target: str, method: str = "minmax") -> QuantConfig:
    """The preset of ``edgepose calibrate --target``: "cpu" (:func:`cpu_config`) or
    "tensorrt" (symmetric int8 activations, what TensorRT builds INT8 from)."""
    return cpu_config(method) if target == "cpu" else QuantConfig(method=method)


def quantize_qdq(
    onnx_in: str | os.PathLike,
    onnx_out: str | os.PathLike,
    batches: Iterable[np.ndarray],
    meta: ModelMeta,
    cfg: QuantConfig | None = None,
) -> dict:
    """Calibrate on ``batches`` and write a symmetric per-channel Q/DQ INT8 ONNX.

    ``batches``: re-iterable (B, 3, H, W) float32 inputs, already preprocessed (a
    :class:`calibration.stream.CalibrationStream`). ``meta`` is stored in the output with
    ``precision="int8"``. Returns a summary: excluded nodes, quantized node count.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cfg = cfg or QuantConfig()
    onnx_in, onnx_out = Path(onnx_in), Path(onnx_out)
    if not onnx_in.is_file():
        raise DataError(f"{onnx_in}: ONNX model not found")
    if onnx_in.resolve() == onnx_out.resolve():
        raise CalibrationError(f"{onnx_out}: the INT8 output would overwrite its FP32 input")
    model = load_onnx(onnx_in, weights=True)
    if has_qdq(model):
        raise CalibrationError(f"{onnx_in}: already quantized (has Q/DQ nodes); give the FP32 ONNX")
    _ensure_node_names(model)
    exclude = (head_nodes(model.graph, cfg.quantize_neck) if cfg.exclude_head else [])
    exclude += list(cfg.extra_exclude)
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[cfg.method]
    extra = {
        "ActivationSymmetric": cfg.symmetric,
        "WeightSymmetric": True,
        # One Q/DQ pair per consumer: ORT's CPU kernels need uint8 activations, and its
        # int8 -> uint8 rewrite (then DQ -> Conv -> Q => QLinearConv) only applies to a
        # Q with a single DQ; a shared pair leaves that Conv running float.
        "DedicatedQDQPair": cfg.dedicated_pairs,
        "CalibTensorRangeSymmetric": cfg.symmetric,
        # ORT quantizes Conv biases to INT32 behind a DequantizeLinear by default;
        # TensorRT's DequantizeLinear takes INT8 only (onnx-tensorrt #850), so the
        # TensorRT (symmetric) preset keeps biases float. ORT's CPU kernels want them INT32.
        "QuantizeBias": not cfg.symmetric,
    }
    if cfg.method == "percentile":
        extra["CalibPercentile"] = cfg.percentile
    input_name = model.graph.input[0].name
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgepose-qdq-") as tmp:
        src = Path(tmp) / "named.onnx"
        onnx.save(model, str(src))
        if cfg.preprocess:
            pre = Path(tmp) / "pre.onnx"
            # Shape inference only: ORT's graph optimisation would rename/fuse nodes and
            # break the head exclusion list.
            quant_pre_process(str(src), str(pre), skip_optimization=True,
                              skip_symbolic_shape=True)
            src = pre
        quantize_static(
            str(src), str(Path(tmp) / "q.onnx"),
            make_reader(batches, input_name, static_batch(model)),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(cfg.op_types),
            per_channel=cfg.per_channel,
            activation_type=QuantType.QInt8 if cfg.symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=method,
            extra_options=extra,
        )
        qmodel = load_onnx(Path(tmp) / "q.onnx", weights=True)
    int8_meta = ModelMeta.from_dict({**meta.to_dict(), "precision": "int8"})
    set_onnx_meta(qmodel, int8_meta)
    onnx.save(qmodel, str(onnx_out))
    if cfg.symmetric:
        problems = qdq_problems(qmodel)
        if problems:
            raise CalibrationError(f"{onnx_out}: not usable by TensorRT: {problems[:2]} "
                                   "(internal error)")
    n_q = sum(n.op_type == "QuantizeLinear" for n in qmodel.graph.node)
    return {"excluded_nodes": exclude, "quantize_linear_nodes": n_q, "method": cfg.method}



"""Will TensorRT's ONNX parser take this graph? A CPU-only check, no TensorRT needed.

Two kinds of findings, each naming the node:

* **unsupported** - an op the ONNX-TensorRT parser does not implement (or a documented
  restriction it breaks, e.g. TopK with a computed K);
* **data-dependent** - an op whose output *shape* depends on tensor *values* (NonZero, Unique,
  NonMaxSuppression, Compress), control flow (Loop, If, Scan), or a shape input
  (Reshape/Expand/Tile/Range/ConstantOfShape/Resize/Slice/Pad/TopK) computed from the image
  rather than from shapes and constants. TensorRT may build these but loses static shapes,
  fusions and often speed; edgepose graphs should have none.

The supported-op table is transcribed from onnx-tensorrt ``docs/operators.md`` for
**TensorRT 8.5** (release/8.5-GA, "supports operators up to Opset 17"), the oldest version
edgepose supports (JetPack 5.1). Later versions add ops (e.g. LayerNormalization in 8.6,
IsInf, Hardmax ...); an op flagged here may work on a newer TensorRT - the report says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from edgepose.errors import EngineError

TABLE_SOURCE = "onnx-tensorrt docs/operators.md, TensorRT 8.5 (opset <= 17)"

# The "Y" rows of the TensorRT 8.5 operator support matrix, plus HardSwish, Mod and OneHot:
# those three are "N" in 8.5's matrix, but 8.5's importer defines them
# (onnx-tensorrt 8.5-GA builtin_op_importers.cpp: DEFINE_BUILTIN_OP_IMPORTER(HardSwish),
# (Mod), (OneHot)); the matrix lags the importer.
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten
Floor Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool
Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid Identity If ImageScaler
InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg
NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1
ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan
Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Ops whose output shape depends on data values, and control flow.
DATA_DEPENDENT_OPS = {
    "NonZero": "output length depends on how many values are non-zero",
    "Unique": "output length depends on the values",
    "NonMaxSuppression": "output length depends on the boxes and scores",
    "Compress": "output length depends on the condition values",
    "Loop": "control flow (loop count / body run at inference time)",
    "If": "control flow (branch chosen from a value)",
    "Scan": "control flow (scan body)",
}

# op -> input slots that are shapes / sizes / indices and should not come from image values.
SHAPE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Range": (0, 1, 2),
    "ConstantOfShape": (0,), "Resize": (1, 2, 3), "Upsample": (1,), "Slice": (1, 2, 3, 4),
    "Pad": (1,), "TopK": (1,), "OneHot": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
}
SHAPE_ONLY_OPS = {"Shape", "Size"}  # outputs depend on shapes only, never on values


@dataclass
class Finding:
    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op}): {self.reason}"


@dataclass
class CompatReport:
    """Op counts and findings for one ONNX graph."""

    op_counts: Counter = field(default_factory=Counter)
    unsupported: list[Finding] = field(default_factory=list)
    data_dependent: list[Finding] = field(default_factory=list)
    opset: int = 0

    @property
    def ok(self) -> bool:
        return not self.unsupported and not self.data_dependent

    def format(self) -> str:
        """Human-readable multi-line report."""
        lines = [f"TensorRT compatibility (table: {TABLE_SOURCE}); opset {self.opset}",
                 "ops: " + ", ".join(f"{op} x{n}" for op, n in sorted(self.op_counts.items()))]
        if self.opset > 17:
            lines.append(f"note: opset {self.opset} > 17, the newest TensorRT 8.5 parses; "
                         "TensorRT 8.6+ / 10.x needed (or export with --opset 17)")
        for title, items in (("unsupported", self.unsupported),
                             ("data-dependent shapes", self.data_dependent)):
            lines += [f"{title}:"] + [f"  - {f}" for f in items] if items else []
        lines.append("result: OK, TensorRT >= 8.5 should parse this graph" if self.ok else
                     "result: PROBLEMS found (newer TensorRT versions may support some ops)")
        return "\n".join(lines)


def _node_name(node, index: int) -> str:
    return node.name or f"node#{index}<{node.op_type}>"


def _const_names(graph) -> set[str]:
    names = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            names.update(node.output)
    return names


def check_graph(model_proto) -> CompatReport:
    """Inspect an ``onnx.ModelProto``; see the module docstring for what is flagged."""
    graph = model_proto.graph
    report = CompatReport()
    report.opset = max((o.version for o in model_proto.opset_import
                        if o.domain in ("", "ai.onnx")), default=0)
    consts = _const_names(graph)
    # A tensor is "value-tainted" when its values depend on a graph input's values.
    tainted = {i.name for i in graph.input if i.name not in consts}
    for idx, node in enumerate(graph.node):  # ONNX nodes are topologically sorted
        name, op = _node_name(node, idx), node.op_type
        report.op_counts[op] += 1
        if node.domain not in ("", "ai.onnx"):
            report.unsupported.append(Finding(name, op, f"custom domain {node.domain!r} "
                                              "needs a TensorRT plugin"))
        elif op not in SUPPORTED_OPS:
            report.unsupported.append(Finding(name, op, "not implemented by the TensorRT 8.5 "
                                              "ONNX parser"))
        if op in DATA_DEPENDENT_OPS:
            report.data_dependent.append(Finding(name, op, DATA_DEPENDENT_OPS[op]))
        for slot in SHAPE_INPUTS.get(op, ()):
            if slot < len(node.input) and node.input[slot] in tainted:
                report.data_dependent.append(Finding(
                    name, op, f"input {slot} ({node.input[slot]!r}) is computed from image "
                    "values, so the output shape is data-dependent"))
        if op == "TopK" and len(node.input) > 1 and node.input[1] not in consts:
            report.unsupported.append(Finding(name, op, "K must be a constant for TensorRT"))
        if op not in SHAPE_ONLY_OPS and any(i in tainted for i in node.input):
            tainted.update(node.output)
    return report


def check_onnx_file(path) -> CompatReport:
    """Load ``path`` (EngineError if unreadable) and run :func:`check_graph`."""
    from edgepose.engines.meta_io import load_onnx

    return check_graph(load_onnx(path))

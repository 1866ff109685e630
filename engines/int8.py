"""What a TensorRT INT8 build needs, as plain values: :class:`Int8Plan` and the Q/DQ checks.

The builder (:mod:`edgepose.engines.trt_build`) never calibrates. The calibration layer
(:func:`edgepose.calibration.trt_calibrator.plan_int8`) - or a user with a Q/DQ ONNX or a
calibrator of their own - makes an :class:`Int8Plan` and hands it to ``build_engine``.
Which route a plan takes is decided once, by :func:`edgepose.engines.versions.int8_route`.

What TensorRT accepts in an explicitly quantized ONNX (onnx-tensorrt's operator matrix,
10.0-GA and main; ``IDequantizeLayer`` in 10.3's ``NvInfer.h``):

* zero points all 0 (symmetric quantization);
* a ``DequantizeLinear`` fed by a constant only if that constant is INT8 (or FP8/INT4):
  ONNX Runtime's default quantizes Conv biases to INT32 constants behind a DQ, which
  TensorRT refuses at parse time (onnx-tensorrt issue #850). :func:`qdq_problems` finds
  both, on the CPU, before any GPU is involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgepose.engines.meta_io import load_onnx
from edgepose.errors import EngineError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# onnx TensorProto data types a TensorRT DequantizeLinear may read from a constant
TRT_DQ_INPUT_TYPES = {"INT8": 3, "FLOAT8E4M3FN": 17, "INT4": 22}


@dataclass
class Int8Plan:
    """The INT8 part of one build.

    route:       ``"qdq"`` (parse ``parse_path``, a Q/DQ ONNX) or ``"calibrator"``
                 (parse ``parse_path``, the FP32 ONNX, and calibrate with ``calibrator``,
                 an ``IInt8Calibrator``; TensorRT 8.5-10.x)
    calib_shape: (B, 3, H, W) the calibrator feeds (calibrator route)
    cleanup:     called by :meth:`close` after the build (closes a calibrator the plan
                 made, removes a temporary Q/DQ file); never for a caller's own calibrator
    """

    route: str
    parse_path: Path
    calibrator: Any = None
    calib_shape: tuple[int, ...] | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.route not in ("qdq", "calibrator"):
            raise ValueError(f"unknown INT8 route {self.route!r}")
        if (self.route == "calibrator") != (self.calibrator is not None):
            raise ValueError("the calibrator route needs a calibrator, and only it has one")
        self.parse_path = Path(self.parse_path)

    def close(self) -> None:
        while self.cleanup:
            self.cleanup.pop()()


def has_qdq(model_or_path) -> bool:
    """True when the graph holds QuantizeLinear or DequantizeLinear nodes."""
    return any(n.op_type in QDQ_OPS for n in load_onnx(model_or_path).graph.node)


def _constants(g) -> dict[str, Any]:
    """Initializers and Constant-node outputs by name (TensorProto each)."""
    out = {t.name: t for t in g.initializer}
    out.update({n.output[0]: n.attribute[0].t for n in g.node
                if n.op_type == "Constant" and n.attribute and n.attribute[0].HasField("t")})
    return out


def nonzero_zero_points(model_or_path) -> list[str]:
    """Names of Q/DQ nodes whose zero point is not all 0 (TensorRT needs symmetric)."""
    from onnx import numpy_helper

    g = load_onnx(model_or_path).graph
    consts = _constants(g)
    bad = []
    for n in g.node:
        if n.op_type in QDQ_OPS and len(n.input) > 2 and n.input[2]:
            zp = consts.get(n.input[2])
            if zp is None or numpy_helper.to_array(zp).any():
                bad.append(n.name or n.op_type)
    return bad


def qdq_problems(model_or_path) -> list[str]:
    """What TensorRT would refuse in this Q/DQ graph (see module doc), one line each."""
    import onnx

    model = load_onnx(model_or_path)
    problems = [f"node {name!r} has a non-zero zero point (TensorRT needs symmetric INT8)"
                for name in nonzero_zero_points(model)]
    consts = _constants(model.graph)
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear":
            continue
        src = consts.get(n.input[0])
        if src is not None and src.data_type not in TRT_DQ_INPUT_TYPES.values():
            kind = onnx.TensorProto.DataType.Name(src.data_type)
            problems.append(f"node {n.name or n.op_type!r} dequantizes a {kind} constant "
                            f"({n.input[0]}); TensorRT's DequantizeLinear takes INT8 only "
                            "(quantize without bias quantization)")
    return problems


def check_qdq_for_tensorrt(model_or_path, label) -> None:
    """EngineError naming ``label`` and the first problems of :func:`qdq_problems`."""
    problems = qdq_problems(model_or_path)
    if problems:
        more = f" (+{len(problems) - 2} more)" if len(problems) > 2 else ""
        raise EngineError(f"{label}: TensorRT cannot use this Q/DQ ONNX: "
                          f"{'; '.join(problems[:2])}{more}; re-run 'edgepose calibrate' "
                          "(its TensorRT preset writes symmetric INT8 with float biases)")


def static_batch(model_or_path) -> int | None:
    """Batch size of the ONNX input when it is fixed, None when it is dynamic."""
    dims = load_onnx(model_or_path).graph.input[0].type.tensor_type.shape.dim
    if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
        return int(dims[0].dim_value)
    return None


def calibrator_shape(calibrator, input_hw: tuple[int, int]) -> tuple[int, ...]:
    """(B, 3, H, W) a calibrator feeds: its ``input_shape`` (edgepose calibrators), else
    ``get_batch_size()`` x the model input size."""
    shape = getattr(calibrator, "input_shape", None)
    if shape is None:
        shape = (calibrator.get_batch_size(), 3, *input_hw)
    return tuple(int(d) for d in shape)

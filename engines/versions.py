"""TensorRT version -> feature decisions, as small pure functions on plain data.

Nothing here imports TensorRT: the builder and runtime ask these functions what to do, and
the unit tests check every decision on version strings alone (8.5.2, 8.6.1, 10.3.0, 11.0 ...).

What changes across the versions edgepose supports (JetPack 5.1 = 8.5, JetPack 6.0 = 8.6,
JetPack 6.1/6.2 = 10.3, desktop 10.x / 11.x):

=========  ==============================  ===========================  =====================
version    network creation flags          FP16                         INT8
=========  ==============================  ===========================  =====================
8.5-9.x    EXPLICIT_BATCH (required)       BuilderFlag.FP16             calibrator or Q/DQ
10.x       none (explicit batch implied;   BuilderFlag.FP16             calibrator or Q/DQ
           EXPLICIT_BATCH is deprecated)                                (calibrators deprecated
                                                                         since 10.1)
11.x       STRONGLY_TYPED (always on;      an FP16 ONNX (types in the   Q/DQ ONNX only
           the flag is accepted, ignored)  graph); no precision flags   (symmetric, zp 0)
=========  ==============================  ===========================  =====================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgepose.errors import EngineError

MIN_SUPPORTED = (8, 5)
PRECISIONS = ("fp32", "fp16", "int8")
INSTALL_HINT = "pip install 'edgepose[trt]' (on Jetson, TensorRT comes with JetPack)"


@dataclass(frozen=True, order=True)
class TrtVersion:
    """A TensorRT version; compares like a tuple (major, minor, patch)."""

    major: int
    minor: int = 0
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str) -> TrtVersion:
    """'8.5.2.2' / '10.13' / '11.0.0.post1' / '10.3.0a' -> TrtVersion (build number dropped)."""
    m = re.match(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise EngineError(f"cannot read the TensorRT version {text!r}; expected e.g. '10.3.0'")
    major, minor, patch = (int(g) if g is not None else 0 for g in m.groups())
    return TrtVersion(major, minor, patch)


def check_supported(v: TrtVersion) -> None:
    """Raise EngineError for TensorRT older than 8.5 (no name-based I/O API)."""
    if (v.major, v.minor) < MIN_SUPPORTED:
        raise EngineError(
            f"TensorRT {v} is too old: edgepose needs TensorRT >= 8.5 "
            "(the name-based tensor API); upgrade TensorRT or JetPack (>= 5.1)"
        )


def is_strongly_typed(v: TrtVersion) -> bool:
    """True when every network is strongly typed (11.x and later)."""
    return v.major >= 11


def has_precision_flags(v: TrtVersion) -> bool:
    """True when BuilderFlag.FP16 / BuilderFlag.INT8 exist (8.5 - 10.x)."""
    return v.major < 11


def has_calibrators(v: TrtVersion) -> bool:
    """True when IInt8EntropyCalibrator2 & co. exist (8.5 - 10.x; deprecated since 10.1)."""
    return v.major < 11


def network_flags(v: TrtVersion) -> tuple[str, ...]:
    """Names of ``trt.NetworkDefinitionCreationFlag`` members to set for this version.

    Implicit batch was removed (and EXPLICIT_BATCH made a no-op) only in 10.0, so 9.x still
    needs the flag; 11.x drops EXPLICIT_BATCH from the enum and renumbers STRONGLY_TYPED to
    0 (always set the bit from ``int(flag)``, never a hard-coded shift)."""
    if v.major < 10:
        return ("EXPLICIT_BATCH",)
    if v.major < 11:
        return ()
    return ("STRONGLY_TYPED",)


def precision_path(v: TrtVersion, precision: str) -> str:
    """How to get ``precision`` on this version.

    Returns one of ``"fp32"`` (plain build), ``"builder_flag_fp16"`` (set BuilderFlag.FP16),
    ``"fp16_onnx"`` (convert the ONNX to FP16, strongly typed build), ``"int8_flag"``
    (BuilderFlag.INT8 with a calibrator or a Q/DQ ONNX), ``"int8_qdq"`` (Q/DQ ONNX only).
    """
    precision = precision.lower()
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    check_supported(v)
    if precision == "fp32":
        return "fp32"
    if precision == "fp16":
        return "builder_flag_fp16" if has_precision_flags(v) else "fp16_onnx"
    return "int8_flag" if has_precision_flags(v) else "int8_qdq"


def describe_support(v: TrtVersion) -> str:
    """One sentence telling the user what this TensorRT version offers."""
    if has_precision_flags(v):
        cal = "deprecated but available" if v >= TrtVersion(10, 1) else "available"
        return (
            f"TensorRT {v}: fp32, fp16 (builder flag), int8 from a Q/DQ ONNX or an entropy "
            f"calibrator ({cal})"
        )
    return (
        f"TensorRT {v}: strongly typed networks only; fp32, fp16 via an FP16 ONNX "
        "(edgepose converts it), int8 only from a Q/DQ ONNX (edgepose calibrate)"
    )


INT8_ROUTES = ("qdq", "quantize", "calibrator")


def no_int8_source() -> str:
    """What to do when an INT8 build has neither Q/DQ nodes nor calibration data (the
    "nothing" row of :func:`int8_route`, whatever the TensorRT version)."""
    return ("--precision int8 needs calibration and this ONNX has no Q/DQ nodes; pass "
            "--calib-data (an image folder, video or COCO .json) or run 'edgepose "
            "calibrate' first and build the .int8.onnx it writes")


def int8_route(v: "TrtVersion | str", has_qdq: bool, has_calibration: bool,
               prefer: str | None = None) -> str:
    """The one INT8 decision: where TensorRT ``v`` gets its INT8 ranges.

    ===========================  ==========  ===========  ==============
    the ONNX / what is given     8.5 - 9.x   10.x         11.x
    ===========================  ==========  ===========  ==============
    has Q/DQ nodes               qdq         qdq          qdq
    calibration data             calibrator  quantize     quantize
    ``prefer="calibrator"``      calibrator  calibrator   EngineError
    ``prefer="quantize"``        quantize    quantize     quantize
    nothing                      EngineError EngineError  EngineError
    ===========================  ==========  ===========  ==============

    ``qdq``: parse the ONNX as it is; ``quantize``: calibrate the data into a Q/DQ ONNX
    (ONNX Runtime) and parse that; ``calibrator``: an entropy calibrator on the data
    (calibrators are deprecated since 10.1, gone in 11). Pure function.
    """
    v = parse_version(v) if isinstance(v, str) else v
    check_supported(v)
    if has_qdq:
        return "qdq"
    if not has_calibration:
        raise EngineError(no_int8_source())
    if prefer is None:
        return "calibrator" if v.major < 10 else "quantize"
    if prefer not in INT8_ROUTES[1:]:
        raise EngineError(f"unknown INT8 route {prefer!r}; choose quantize or calibrator")
    if prefer == "calibrator" and not has_calibrators(v):
        raise EngineError(
            f"TensorRT {v} has no INT8 calibrators (networks are strongly typed); give "
            "edgepose build a Q/DQ ONNX made by 'edgepose calibrate' instead")
    return prefer


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT, pycuda and a CUDA device are all usable here; otherwise why not
    (one sentence). Imports tensorrt/pycuda only to probe; never raises."""
    import importlib.util

    missing = [m for m in ("tensorrt", "pycuda") if importlib.util.find_spec(m) is None]
    if missing:
        return f"needs CUDA, TensorRT and pycuda ({' and '.join(missing)} not installed)"
    try:
        import tensorrt

        check_supported(parse_version(tensorrt.__version__))
    except Exception as e:  # a broken or older-than-8.5 TensorRT: skip, do not fail
        return f"needs TensorRT >= 8.5 ({type(e).__name__}: {str(e)[:120]})"
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return "needs CUDA, TensorRT and pycuda (no CUDA device)"
    except Exception as e:  # driver missing, no GPU, broken install
        return f"needs CUDA, TensorRT and pycuda (CUDA unavailable: {type(e).__name__}: {e})"
    return None

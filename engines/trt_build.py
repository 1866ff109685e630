"""ONNX -> TensorRT engine (``edgepose build``), for TensorRT 8.5 - 11.x.

Needs an NVIDIA GPU, TensorRT's Python package and (only for the device name in the header)
pycuda: ``pip install 'edgepose[trt]'``. TensorRT is imported lazily, so this module imports
on any machine. The version decisions live in :mod:`engines.versions`.

Engine file = edgepose header (model metadata, TensorRT version, device, batch range) +
plan (:mod:`engines.plan_format`), written atomically. The timing cache, when given, is read
before and written after every build, so rebuilding (another precision, batch range ...) on
the same device skips most kernel timing.

INT8 comes as an :class:`~edgepose.engines.int8.Int8Plan` (``BuildOptions.int8``), a plain
value made by the calibration layer (``edgepose.calibration.trt_calibrator.plan_int8``:
calibration data -> a Q/DQ ONNX or an entropy calibrator) or by the caller; this module
never calibrates and never imports the calibration layer. A Q/DQ ONNX needs no plan.
Which ONNX is parsed and which calibration profile is used are pure functions
(:func:`parse_target`, :func:`calibration_profile_shapes`) tested without TensorRT.
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.fileio import atomic_write_bytes
from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta
from edgepose.engines import versions
from edgepose.engines.int8 import Int8Plan, check_qdq_for_tensorrt, has_qdq
from edgepose.engines.export import INPUT_NAME, to_fp16_onnx
from edgepose.engines.meta_io import load_onnx, read_meta
from edgepose.engines.plan_format import write_plan


@dataclass
class BuildOptions:
    """``precision``: fp32 | fp16 | int8. Batch range for the optimisation profile (ignored
    for a static-batch ONNX). ``int8``: the :class:`Int8Plan` of an INT8 build (not needed
    for an ONNX that already holds Q/DQ nodes; ``edgepose build --calib-data`` makes one).
    """

    precision: str = "fp32"
    workspace_mb: int = 1024
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 4
    timing_cache: str | None = None
    int8: Int8Plan | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        self.precision = self.precision.lower()
        if self.precision not in versions.PRECISIONS:
            raise EngineError(f"unknown precision {self.precision!r}; choose one of "
                              f"{list(versions.PRECISIONS)}")
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise EngineError(
                f"batch range must satisfy 1 <= min <= opt <= max, got min={self.min_batch} "
                f"opt={self.opt_batch} max={self.max_batch}")
        if self.workspace_mb < 16:
            raise EngineError(f"--workspace-mb {self.workspace_mb} is too small (>= 16)")
        if self.int8 is not None and self.precision != "int8":
            raise EngineError(f"INT8 calibration only applies to --precision int8, not "
                              f"{self.precision}; drop it or build int8")


def import_tensorrt():
    """``import tensorrt`` with an install hint; checks the version is >= 8.5."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError(f"TensorRT is not installed; {versions.INSTALL_HINT}") from None
    versions.check_supported(versions.parse_version(trt.__version__))
    return trt


def cuda_device_name(index: int = 0) -> str:
    """GPU name via pycuda, or "unknown" when pycuda is absent (the header is informative)."""
    try:
        import pycuda.driver as cuda

        cuda.init()
        return cuda.Device(index).name()
    except Exception:
        return "unknown"


def network_flag_bits(trt, names: tuple[str, ...]) -> int:
    """OR of ``1 << NetworkDefinitionCreationFlag.<name>``; names missing from this TensorRT
    (e.g. STRONGLY_TYPED where it is implied) are skipped."""
    bits = 0
    for n in names:
        flag = getattr(trt.NetworkDefinitionCreationFlag, n, None)
        if flag is not None:
            bits |= 1 << int(flag)
    return bits


def parser_errors(parser, onnx_path) -> str:
    """All parser errors as one string, naming the node (name + op where the binding has
    them - ``ParserError.node_name()`` / ``node_operator()`` are bound in 10.x, not in 8.5 /
    8.6 - else its index)."""
    msgs = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        name = err.node_name() if hasattr(err, "node_name") else ""  # bound in 10.x
        if name:
            where = f"node {name!r} ({err.node_operator()})"
        elif err.node() >= 0:
            where = f"node #{err.node()}"
        else:  # -1: not tied to a node (bad file, graph-level check)
            where = "graph"
        msgs.append(f"{where}: {err.desc()}")
    return f"{onnx_path}: TensorRT cannot parse the ONNX graph: " + "; ".join(msgs) + \
        " (run 'edgepose export --check-trt' for a CPU-side report)"


def _load_timing_cache(config, path: str | None) -> bool:
    """Attach the timing cache read from ``path`` (a fresh one when absent). A blob TensorRT
    rejects - ``create_timing_cache`` returns None for a corrupt one, ``set_timing_cache``
    False for another device / version - is replaced by an empty cache, so the build still
    runs and overwrites the file. Returns True when the file's cache was used."""
    data = b""
    if path and Path(path).is_file():
        data = Path(path).read_bytes()
    cache = config.create_timing_cache(data)
    if cache is not None and config.set_timing_cache(cache, False):
        return bool(data)
    if data:
        warnings.warn(f"timing cache {path} was made by another TensorRT version or GPU (or "
                      "is damaged); building without it and overwriting it", stacklevel=2)
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        raise EngineError("TensorRT cannot create an empty timing cache; build without "
                          "--timing-cache")
    return False


def _save_timing_cache(config, path: str | None) -> None:
    if path:
        blob = bytes(config.get_timing_cache().serialize())
        atomic_write_bytes(path, lambda f: f.write(blob))


def configure_int8(trt, config, version, plan: Int8Plan, calib_profile=None) -> None:
    """Set up INT8 for ``plan``: 8.5-10.x set BuilderFlag.INT8 (+FP16 for the layers left
    unquantized) and, on the calibrator route, the calibrator and its profile
    ``calib_profile`` (min = opt = max = the calibrator's shape, see
    :func:`calibration_profile_shapes`); 11.x needs nothing (the Q/DQ graph is typed)."""
    if plan.route == "calibrator" and not versions.has_calibrators(version):
        raise EngineError(f"TensorRT {version} has no INT8 calibrators; build from a Q/DQ "
                          "ONNX made by 'edgepose calibrate'")
    if versions.has_precision_flags(version):
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers left unquantized may use fp16
        if plan.route == "calibrator":
            config.int8_calibrator = plan.calibrator
            if calib_profile is not None and not config.set_calibration_profile(calib_profile):
                raise EngineError("TensorRT refused the INT8 calibration profile "
                                  f"{plan.calib_shape}")


def own_qdq_plan(onnx_path, model=None) -> Int8Plan:
    """The plan for an ONNX that is already quantized: parse it as it is, after checking
    that TensorRT accepts its Q/DQ nodes. EngineError (with the hint) when it has none."""
    model = load_onnx(model if model is not None else onnx_path)
    if not has_qdq(model):
        raise EngineError(f"{onnx_path}: {versions.no_int8_source()}")
    check_qdq_for_tensorrt(model, onnx_path)
    return Int8Plan("qdq", Path(onnx_path))


def parse_target(precision_path: str, onnx_path, tmp, int8: Int8Plan | None = None) -> Path:
    """The ONNX file TensorRT parses: an FP16 copy in ``tmp`` (11.x fp16), the INT8 plan's
    ``parse_path`` (a Q/DQ ONNX, or the original for the calibrator route), else the
    original."""
    if precision_path == "fp16_onnx":
        return Path(tmp) / "model_fp16.onnx"
    if precision_path.startswith("int8"):
        if int8 is None:
            raise ValueError("an INT8 build needs its Int8Plan")
        return int8.parse_path
    return Path(onnx_path)


def detector_parse_source(onnx_path: Path, detector: dict, tmp) -> Path:
    """The detector ONNX to parse: the file itself when its input is fixed, else a copy
    fixed at ``long_side`` square (:func:`edgepose.engines.detector.static_copy`; the
    engine then letterboxes frames into it)."""
    from edgepose.engines.detector import fixed_input_hw, static_copy
    from edgepose.engines.meta_io import load_onnx

    dims = load_onnx(onnx_path).graph.input[0].type.tensor_type.shape.dim
    if fixed_input_hw([d.dim_value or d.dim_param for d in dims]) is not None:
        return onnx_path
    side = int(detector.get("long_side", max(detector["input_size"])))
    out = Path(tmp) / f"{onnx_path.stem}_{side}x{side}.onnx"
    static_copy(onnx_path, out, (side, side))
    return out


def calibration_profile_shapes(calib_shape, network_shape) -> tuple | None:
    """(min, opt, max) of the calibration profile: all equal to the calibrator's
    ``calib_shape`` for a dynamic-batch network; None when there is no calibrator or the
    network shape is fixed (EngineError if the calibrator's shape differs from it)."""
    if calib_shape is None:
        return None
    calib_shape, network_shape = tuple(calib_shape), tuple(network_shape)
    fits = len(calib_shape) == len(network_shape) and all(
        n in (-1, c) for c, n in zip(calib_shape, network_shape))
    if not fits:
        raise EngineError(f"the INT8 calibrator feeds {list(calib_shape)} but the network "
                          f"input is {list(network_shape)}; calibrate with the model's input "
                          "size and batch")
    if -1 not in network_shape:
        return None
    return calib_shape, calib_shape, calib_shape


# ----------------------------------------------------------------------------- build


def build_engine(onnx_path, out_path, opts: BuildOptions | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Build ``onnx_path`` into an engine file at ``out_path``; returns the header info."""
    opts = opts or BuildOptions()
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if not onnx_path.is_file():
        raise EngineError(f"{onnx_path}: ONNX file not found")
    from edgepose.engines.detector import onnx_detector_spec

    detector = onnx_detector_spec(onnx_path)  # the person detector, or a pose model
    meta = read_meta(onnx_path) if detector is None else None
    if detector is not None and (opts.precision == "int8" or opts.int8 is not None):
        raise EngineError(f"{onnx_path}: INT8 is not supported for the person detector; "
                          "build it with --precision fp16 (or fp32)")
    int8 = opts.int8
    if opts.precision == "int8" and int8 is None:  # reported before TensorRT is needed
        int8 = own_qdq_plan(onnx_path)
    trt = import_tensorrt()
    version = versions.parse_version(trt.__version__)
    path = versions.precision_path(version, opts.precision)
    logger = trt.Logger(trt.Logger.VERBOSE if opts.verbose else trt.Logger.WARNING)
    try:
        builder = trt.Builder(logger)
    except Exception as e:  # no driver / no device
        raise EngineError(f"TensorRT cannot open a CUDA GPU ({e}); edgepose build needs an "
                          "NVIDIA GPU with a working driver") from None
    if builder is None:
        raise EngineError("TensorRT cannot open a CUDA GPU; edgepose build needs an NVIDIA "
                          "GPU with a working driver")

    with tempfile.TemporaryDirectory() as tmp:
        source = onnx_path
        if detector is not None:  # a free input size: the engine is built square, letterboxed
            source = detector_parse_source(onnx_path, detector, tmp)
        try:
            parse_path = parse_target(path, source, tmp, int8)
            if path == "fp16_onnx":  # 11.x: precision lives in the graph (strongly typed)
                to_fp16_onnx(source, parse_path)
            label = str(onnx_path) if parse_path == onnx_path else \
                f"{onnx_path} (as {parse_path.name})"
            plan, batch_range = _build_plan(trt, builder, logger, version, path, parse_path,
                                            label, meta, opts, int8, progress, out_path.name)
        finally:
            if opts.int8 is None and int8 is not None:
                int8.close()  # a caller's plan is the caller's to close
        if plan is None:
            raise EngineError(f"{onnx_path}: TensorRT failed to build an engine (see the "
                              "TensorRT log above; try a larger --workspace-mb)")
    info = {"tensorrt": str(version), "device": cuda_device_name(), "batch_range": batch_range,
            "precision_path": path}
    if int8 is not None:
        info["int8_route"] = int8.route
    if detector is not None:
        write_plan(out_path, None, bytes(plan), {**info, "precision": opts.precision},
                   detector=detector)
    else:
        write_plan(out_path, dataclasses.replace(meta, precision=opts.precision), bytes(plan),
                   info)
    return info


def _build_plan(trt, builder, logger, version, path: str, parse_path: Path, source: str,
                meta: ModelMeta | None, opts: BuildOptions, int8: Int8Plan | None, progress: bool,
                label: str):
    """Parse ``parse_path`` (``source`` names it in errors), configure precision / profiles /
    timing cache and build. Returns (serialized plan or None, [min, max] batch)."""
    network = builder.create_network(network_flag_bits(trt, versions.network_flags(version)))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(parse_path)):
        raise EngineError(parser_errors(parser, source))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    batch_range, _ = _add_profile(builder, network, config, meta, opts)
    if path == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # true fp32, comparable with ONNX Runtime
    if path == "builder_flag_fp16":
        if getattr(builder, "platform_has_fast_fp16", True) is False:  # query gone in 11
            raise EngineError(f"this GPU ({cuda_device_name()}) has no fast FP16 in "
                              f"TensorRT {version}; build with --precision fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    elif int8 is not None:
        shapes = calibration_profile_shapes(int8.calib_shape, tuple(network.get_input(0).shape))
        calib_profile = None
        if shapes is not None:
            calib_profile = builder.create_optimization_profile()
            calib_profile.set_shape(INPUT_NAME, *shapes)
        configure_int8(trt, config, version, int8, calib_profile)
    _load_timing_cache(config, opts.timing_cache)
    plan = _build_with_progress(builder, network, config, progress, label)
    if plan is not None:
        _save_timing_cache(config, opts.timing_cache)
    return plan, batch_range


def _add_profile(builder, network, config, meta: ModelMeta | None, opts: BuildOptions):
    """Optimisation profile over the batch range when the ONNX batch dim is dynamic.
    Returns ([min, max] batch, profile or None)."""
    inp = network.get_input(0)
    if inp.name != INPUT_NAME:
        raise EngineError(f"ONNX input is {inp.name!r}, expected {INPUT_NAME!r}; re-export it")
    shape = tuple(inp.shape)
    if shape[0] != -1:
        return [shape[0], shape[0]], None
    if meta is None:
        raise EngineError(f"ONNX input {list(shape)} has a dynamic batch; the detector is "
                          "built from its static-shape ONNX (scripts/convert_detector.py)")
    h, w = meta.input_size
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (opts.min_batch, 3, h, w), (opts.opt_batch, 3, h, w),
                      (opts.max_batch, 3, h, w))
    if config.add_optimization_profile(profile) < 0:
        raise EngineError(f"TensorRT refused the optimisation profile batch {opts.min_batch}-"
                          f"{opts.max_batch} for input {list(shape)}")
    return [opts.min_batch, opts.max_batch], profile


def _build_with_progress(builder, network, config, progress: bool, label: str):
    """``build_serialized_network`` with a tqdm spinner (TensorRT gives no progress hook
    on all versions, so this shows elapsed time)."""
    import threading

    from tqdm import tqdm

    done = threading.Event()
    result: list = []
    errors: list = []

    def work():
        try:
            result.append(builder.build_serialized_network(network, config))
        except Exception as e:  # re-raised in the caller's thread
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=work, daemon=True)
    t.start()
    with tqdm(desc=f"building {label}", unit="s", disable=not progress,
              bar_format="{desc}: {elapsed}") as bar:
        while not done.wait(1.0):
            bar.update(1)
    t.join()
    if errors:
        raise EngineError(f"TensorRT build failed: {errors[0]}")
    return result[0] if result else None

"""ONNX -> TensorRT engine (``edgepose build``), for TensorRT 8.5 - 11.x.

Needs an NVIDIA GPU, TensorRT's Python package and (only for the device name in the header)
pycuda: ``pip install 'edgepose[trt]'``. TensorRT is imported lazily, so this module imports
on any machine. The version decisions live in :mod:`engines.versions`.

Engine file = edgepose header (model metadata, TensorRT version, device, batch range) +
plan (:mod:`engines.plan_format`), written atomically. The timing cache, when given, is read
before and written after every build, so rebuilding (another precision, batch range ...) on
the same device skips most kernel timing.

INT8 takes one of three sources (:func:`int8_source`): an ONNX that already holds Q/DQ nodes
(``edgepose calibrate``), calibration data (``calib_data``: images, a video or a COCO file,
handed to :func:`calibration.trt_calibrator.int8_build_inputs`, which returns a Q/DQ ONNX to
parse on 10.x/11.x or an entropy calibrator on 8.5-9.x), or a ready ``int8_calibrator``.
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
from engines import versions
from engines.export import INPUT_NAME, read_metadata, to_fp16_onnx
from engines.plan_format import write_plan


@dataclass
class BuildOptions:
    """``precision``: fp32 | fp16 | int8. Batch range for the optimisation profile (ignored
    for a static-batch ONNX).

    INT8 sources (int8 only; a Q/DQ ONNX needs none of them): ``calib_data`` - an image
    folder, video or COCO keypoint .json to calibrate on; ``calib_cache`` - the entropy
    calibrator's cache file (default ``<onnx>.calib``; TensorRT 8.5-9.x route only);
    ``int8_calibrator`` - a ready ``IInt8Calibrator`` (8.5-10.x; the caller closes it).
    """

    precision: str = "fp32"
    workspace_mb: int = 1024
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 4
    timing_cache: str | None = None
    int8_calibrator: Any = None
    calib_data: str | None = None
    calib_cache: str | None = None
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
        check_calib_options(self.precision, self.calib_data, self.calib_cache,
                            self.int8_calibrator is not None)


def check_calib_options(precision: str, calib_data, calib_cache, has_calibrator: bool) -> None:
    """EngineError for calibration options that would be silently ignored."""
    if precision != "int8" and (calib_data or calib_cache or has_calibrator):
        raise EngineError(f"--calib-data / --calib-cache / an INT8 calibrator only apply to "
                          f"--precision int8, not {precision}; drop them or build int8")
    if calib_cache and not calib_data:
        raise EngineError(f"--calib-cache {calib_cache} needs --calib-data (the images it "
                          "was calibrated on: the cache is checked against them)")
    if calib_data and has_calibrator:
        raise EngineError("give either calibration data (--calib-data) or a ready INT8 "
                          "calibrator, not both")


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


def onnx_has_qdq(path) -> bool:
    """True when the ONNX graph holds QuantizeLinear nodes (explicit quantization).
    EngineError when a zero point is non-zero: TensorRT takes symmetric Q/DQ only."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in g.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    qdq = [n for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for n in qdq:
        name = n.input[2] if len(n.input) > 2 else ""
        zp = inits[name] if name in inits else consts.get(name)
        if zp is not None and numpy_helper.to_array(zp).any():
            raise EngineError(
                f"{path}: node {n.name or n.op_type!r} has a non-zero zero point; TensorRT "
                "needs symmetric INT8 Q/DQ (zero point 0) - calibrate with symmetric "
                "activations (the TensorRT preset of 'edgepose calibrate')")
    return any(n.op_type == "QuantizeLinear" for n in qdq)


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
    """All parser errors as one string, naming the node (name + op on 8.6+, index on 8.5)."""
    msgs = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        name = err.node_name() if hasattr(err, "node_name") else ""  # 8.6+
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


def configure_int8(trt, config, version, onnx_path, calibrator, calib_profile=None) -> str:
    """INT8 hook for the calibration tools: ``onnx_path`` (the ONNX that was *parsed*) is a
    Q/DQ ONNX (explicit quantization, every version) or ``calibrator`` an ``IInt8Calibrator``
    (8.5-10.x, implicit quantization). ``calib_profile``: for a dynamic-batch network, an
    optimisation profile with min = opt = max = the calibrator's input shape (see
    :func:`calibration_profile_shapes`), not the main batch profile. Returns the route."""
    route = versions.check_int8_source(version, onnx_has_qdq(onnx_path), calibrator is not None)
    if versions.has_precision_flags(version):
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers left unquantized may use fp16
        if route == "calibrator":
            config.int8_calibrator = calibrator
            if calib_profile is not None:
                config.set_calibration_profile(calib_profile)
    return route


# ----------------------------------------------------------------------------- INT8 decisions


def int8_source(onnx_path, has_qdq: bool, calib_data, has_calibrator: bool) -> str:
    """Where INT8 ranges come from: ``"qdq_onnx"`` (the ONNX has Q/DQ nodes; wins over the
    rest), ``"calib_data"`` or ``"calibrator"``. EngineError when there is none."""
    if has_qdq:
        return "qdq_onnx"
    if calib_data:
        return "calib_data"
    if has_calibrator:
        return "calibrator"
    raise EngineError(
        f"{onnx_path}: --precision int8 needs calibration and this ONNX has no Q/DQ nodes; "
        "pass --calib-data (an image folder, video or COCO .json) or run 'edgepose "
        "calibrate' first and build the .int8.onnx it writes")


def onnx_static_batch(path) -> int | None:
    """Batch size of the ONNX input when it is fixed, None when it is dynamic."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
        return int(dims[0].dim_value)
    return None


def calib_stream_config(static_batch: int | None, progress: bool = True):
    """The :class:`calibration.stream.StreamConfig` for ``calib_data``: the defaults, but
    with the ONNX's own batch size when it is fixed (an entropy calibrator must feed exactly
    the network's input shape)."""
    from calibration.stream import StreamConfig

    cfg = StreamConfig(progress=progress)
    if static_batch is not None:
        cfg.batch = static_batch
    return cfg


@dataclass
class Int8Inputs:
    """What the builder needs for INT8: the ONNX to parse, and for the calibrator route the
    calibrator, its (B, 3, H, W) input shape and whether this build made it (then it is
    closed after the build)."""

    parse_path: Path
    calibrator: Any = None
    calib_shape: tuple[int, ...] | None = None
    owned: bool = False

    def close(self) -> None:
        if self.owned and self.calibrator is not None:
            self.calibrator.close()


def calibrator_shape(calibrator, input_hw: tuple[int, int]) -> tuple[int, ...]:
    """(B, 3, H, W) a calibrator feeds: its ``input_shape`` (edgepose calibrators), else
    ``get_batch_size()`` x the model input size."""
    shape = getattr(calibrator, "input_shape", None)
    if shape is None:
        shape = (calibrator.get_batch_size(), 3, *input_hw)
    return tuple(int(d) for d in shape)


def int8_inputs_from(kind: str, value, onnx_path, input_hw: tuple[int, int],
                     owned: bool = True) -> Int8Inputs:
    """``int8_build_inputs``' answer -> :class:`Int8Inputs`: ``("qdq", path)`` parses
    ``path``; ``("calibrator", obj)`` parses ``onnx_path`` and calibrates with ``obj``."""
    if kind == "qdq":
        return Int8Inputs(Path(value))
    if kind == "calibrator":
        return Int8Inputs(Path(onnx_path), value, calibrator_shape(value, input_hw), owned)
    raise ValueError(f"unknown INT8 input kind {kind!r}")


def parse_target(precision_path: str, onnx_path, tmp, int8: Int8Inputs | None = None) -> Path:
    """The ONNX file TensorRT parses: an FP16 copy in ``tmp`` (11.x fp16), the INT8 input's
    ``parse_path`` (a Q/DQ ONNX, or the original for the calibrator route), else the
    original."""
    if precision_path == "fp16_onnx":
        return Path(tmp) / "model_fp16.onnx"
    if precision_path.startswith("int8"):
        if int8 is None:
            raise ValueError("an INT8 build needs its Int8Inputs")
        return int8.parse_path
    return Path(onnx_path)


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


def prepare_int8(onnx_path, trt_version: str, opts: BuildOptions, meta: ModelMeta, tmp,
                 progress: bool = True) -> Int8Inputs:
    """The INT8 inputs of a build (see :func:`int8_source`); with ``calib_data`` this
    calibrates now (a Q/DQ ONNX in ``tmp`` on 10.x/11.x, an entropy calibrator on 8.5-9.x,
    which needs TensorRT and pycuda). Nothing here imports TensorRT itself."""
    onnx_path = Path(onnx_path)
    source = int8_source(onnx_path, onnx_has_qdq(onnx_path), opts.calib_data,
                         opts.int8_calibrator is not None)
    if source == "qdq_onnx":
        if opts.calib_data:
            warnings.warn(f"{onnx_path} is already quantized (Q/DQ); --calib-data "
                          f"{opts.calib_data} is not used", stacklevel=2)
        return Int8Inputs(onnx_path)
    if source == "calibrator":
        return int8_inputs_from("calibrator", opts.int8_calibrator, onnx_path,
                                meta.input_size, owned=False)
    from calibration.stream import CalibrationStream
    from calibration.trt_calibrator import int8_build_inputs

    cfg = calib_stream_config(onnx_static_batch(onnx_path), progress)
    kind, value = int8_build_inputs(
        onnx_path, trt_version, lambda: CalibrationStream(opts.calib_data, meta, cfg),
        opts.calib_cache, qdq_path=Path(tmp) / "model.int8.onnx")
    if kind == "qdq" and opts.calib_cache:
        warnings.warn(f"TensorRT {trt_version} builds INT8 from a Q/DQ ONNX; --calib-cache "
                      f"{opts.calib_cache} is not used", stacklevel=2)
    return int8_inputs_from(kind, value, onnx_path, meta.input_size)


# ----------------------------------------------------------------------------- build


def build_engine(onnx_path, out_path, opts: BuildOptions | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Build ``onnx_path`` into an engine file at ``out_path``; returns the header info."""
    opts = opts or BuildOptions()
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if not onnx_path.is_file():
        raise EngineError(f"{onnx_path}: ONNX file not found")
    meta = read_metadata(onnx_path)
    if opts.precision == "int8":  # a missing INT8 source is reported before TensorRT is needed
        int8_source(onnx_path, onnx_has_qdq(onnx_path), opts.calib_data,
                    opts.int8_calibrator is not None)
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
        int8 = None
        if path.startswith("int8"):
            int8 = prepare_int8(onnx_path, trt.__version__, opts, meta, tmp, progress)
        try:
            parse_path = parse_target(path, onnx_path, tmp, int8)
            if path == "fp16_onnx":  # 11.x: precision lives in the graph (strongly typed)
                to_fp16_onnx(onnx_path, parse_path)
            label = str(onnx_path) if parse_path == onnx_path else \
                f"{onnx_path} (as {parse_path.name})"
            plan, batch_range = _build_plan(trt, builder, logger, version, path, parse_path,
                                            label, meta, opts, int8, progress, out_path.name)
        finally:
            if int8 is not None:
                int8.close()
        if plan is None:
            raise EngineError(f"{onnx_path}: TensorRT failed to build an engine (see the "
                              "TensorRT log above; try a larger --workspace-mb)")
    info = {"tensorrt": str(version), "device": cuda_device_name(), "batch_range": batch_range,
            "precision_path": path}
    if int8 is not None:
        info["int8_route"] = "calibrator" if int8.calibrator is not None else "qdq"
    write_plan(out_path, dataclasses.replace(meta, precision=opts.precision), bytes(plan), info)
    return info


def _build_plan(trt, builder, logger, version, path: str, parse_path: Path, source: str,
                meta: ModelMeta, opts: BuildOptions, int8: Int8Inputs | None, progress: bool,
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
        configure_int8(trt, config, version, parse_path, int8.calibrator, calib_profile)
    _load_timing_cache(config, opts.timing_cache)
    plan = _build_with_progress(builder, network, config, progress, label)
    if plan is not None:
        _save_timing_cache(config, opts.timing_cache)
    return plan, batch_range


def _add_profile(builder, network, config, meta: ModelMeta, opts: BuildOptions):
    """Optimisation profile over the batch range when the ONNX batch dim is dynamic.
    Returns ([min, max] batch, profile or None)."""
    inp = network.get_input(0)
    if inp.name != INPUT_NAME:
        raise EngineError(f"ONNX input is {inp.name!r}, expected {INPUT_NAME!r}; re-export it")
    shape = tuple(inp.shape)
    h, w = meta.input_size
    if shape[0] != -1:
        return [shape[0], shape[0]], None
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (opts.min_batch, 3, h, w), (opts.opt_batch, 3, h, w),
                      (opts.max_batch, 3, h, w))
    config.add_optimization_profile(profile)
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


def build_from_args(onnx_path, out_path, **kwargs) -> dict[str, Any]:
    """Convenience wrapper: keyword arguments of :class:`BuildOptions`."""
    return build_engine(onnx_path, out_path, BuildOptions(**kwargs))


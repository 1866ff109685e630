"""ONNX -> TensorRT engine (``edgepose build``), for TensorRT 8.5 - 11.x.

Needs an NVIDIA GPU, TensorRT's Python package and (only for the device name in the header)
pycuda: ``pip install 'edgepose[trt]'``. TensorRT is imported lazily, so this module imports
on any machine. The version decisions live in :mod:`engines.versions`.

Engine file = edgepose header (model metadata, TensorRT version, device, batch range) +
plan (:mod:`engines.plan_format`), written atomically. The timing cache, when given, is read
before and written after every build, so rebuilding (another precision, batch range ...) on
the same device skips most kernel timing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.checkpoint import atomic_write_bytes
from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta
from engines import versions
from engines.export import INPUT_NAME, read_metadata, to_fp16_onnx
from engines.plan_format import write_plan


@dataclass
class BuildOptions:
    """``precision``: fp32 | fp16 | int8. Batch range for the optimisation profile (ignored
    for a static-batch ONNX). ``int8_calibrator``: an ``IInt8Calibrator`` (8.5-10.x only);
    without one, INT8 needs a Q/DQ ONNX (from ``edgepose calibrate``)."""

    precision: str = "fp32"
    workspace_mb: int = 1024
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 4
    timing_cache: str | None = None
    int8_calibrator: Any = None
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
        where = f"node #{err.node()}"
        if hasattr(err, "node_name"):
            where = f"node {err.node_name()!r} ({err.node_operator()})"
        msgs.append(f"{where}: {err.desc()}")
    return f"{onnx_path}: TensorRT cannot parse the ONNX graph: " + "; ".join(msgs) + \
        " (run 'edgepose export --check-trt' for a CPU-side report)"


def _load_timing_cache(config, path: str | None):
    data = b""
    if path and Path(path).is_file():
        data = Path(path).read_bytes()
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False) and data:
        # cache from another device / TensorRT version: start a fresh one
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)


def _save_timing_cache(config, path: str | None) -> None:
    if path:
        blob = bytes(config.get_timing_cache().serialize())
        atomic_write_bytes(path, lambda f: f.write(blob))


def configure_int8(trt, config, version, onnx_path, calibrator, profile=None) -> str:
    """INT8 hook for the calibration tools: ``onnx_path`` is a Q/DQ ONNX (explicit
    quantization, every version) or ``calibrator`` an ``IInt8Calibrator`` (8.5-10.x, implicit
    quantization; with a dynamic batch it calibrates on ``profile``). Returns the route."""
    route = versions.check_int8_source(version, onnx_has_qdq(onnx_path), calibrator is not None)
    if versions.has_precision_flags(version):
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers left unquantized may use fp16
        if route == "calibrator":
            config.int8_calibrator = calibrator
            if profile is not None:
                config.set_calibration_profile(profile)
    return route


def build_engine(onnx_path, out_path, opts: BuildOptions | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Build ``onnx_path`` into an engine file at ``out_path``; returns the header info."""
    opts = opts or BuildOptions()
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if not onnx_path.is_file():
        raise EngineError(f"{onnx_path}: ONNX file not found")
    meta = read_metadata(onnx_path)
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
        parse_path = onnx_path
        if path == "fp16_onnx":  # 11.x: precision lives in the graph (strongly typed)
            parse_path = Path(tmp) / "model_fp16.onnx"
            to_fp16_onnx(onnx_path, parse_path)
        network = builder.create_network(network_flag_bits(trt, versions.network_flags(version)))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(parse_path)):
            raise EngineError(parser_errors(parser, onnx_path))
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
        batch_range, profile = _add_profile(builder, network, config, meta, opts)
        if path == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # true fp32, comparable with ONNX Runtime
        if path == "builder_flag_fp16":
            if getattr(builder, "platform_has_fast_fp16", True) is False:  # query gone in 11
                raise EngineError(f"this GPU ({cuda_device_name()}) has no fast FP16 in "
                                  f"TensorRT {version}; build with --precision fp32")
            config.set_flag(trt.BuilderFlag.FP16)
        elif path.startswith("int8"):
            configure_int8(trt, config, version, onnx_path, opts.int8_calibrator, profile)
        _load_timing_cache(config, opts.timing_cache)
        plan = _build_with_progress(builder, network, config, progress, out_path.name)
        if plan is None:
            raise EngineError(f"{onnx_path}: TensorRT failed to build an engine (see the "
                              "TensorRT log above; try a larger --workspace-mb)")
        _save_timing_cache(config, opts.timing_cache)
    info = {"tensorrt": str(version), "device": cuda_device_name(), "batch_range": batch_range,
            "precision_path": path}
    write_plan(out_path, dataclasses.replace(meta, precision=opts.precision), bytes(plan), info)
    return info


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


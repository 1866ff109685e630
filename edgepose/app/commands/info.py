"""``edgepose info``: what this machine can run: runtimes, providers, TensorRT and what its
version supports, the imported MoveNet files, the teachers and the bundled models."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "info",
        help="what this machine can run: runtimes, TensorRT support, teachers, models",
        description=(
            "Print the versions of edgepose and its runtimes (PyTorch, ONNX Runtime and its "
            "execution providers, TensorRT and pycuda), what the installed TensorRT version "
            "supports (FP16 / INT8 routes), whether MoveNet is imported (the teacher and the "
            "trunk of the shipped models) and which bundled models exist. Ask it first when a "
            "deployment fails."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def tensorrt_line(version: str | None) -> str:
    """One line on TensorRT: its version and what it supports, or how to install it."""
    from edgepose.engines.versions import (
        INSTALL_HINT, check_supported, describe_support, parse_version,
    )
    from edgepose.errors import EngineError

    if version is None:
        return f"TensorRT: not installed ({INSTALL_HINT})"
    try:
        v = parse_version(version)
        check_supported(v)
    except EngineError as e:
        return f"TensorRT {version}: not usable ({e})"
    return describe_support(v)


def report() -> list[str]:
    import importlib.metadata as md
    import importlib.util
    import platform
    import sys

    from edgepose import __version__
    from edgepose.engines import teacher as T
    from edgepose.models import movenet_import
    from edgepose.bundled import ASSETS

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    lines = [f"edgepose {__version__}, Python {platform.python_version()} "
             f"({sys.executable}), {platform.machine()}"]
    import torch

    cuda = (f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s)"
            if torch.cuda.is_available() else "no CUDA device")
    lines.append(f"PyTorch {torch.__version__}: {cuda}")
    import onnxruntime as ort

    lines.append(f"ONNX Runtime {ort.__version__}: providers "
                 f"{', '.join(ort.get_available_providers())}")
    trt = None
    if importlib.util.find_spec("tensorrt") is not None:
        trt = version("tensorrt") or version("tensorrt-cu12") or "unknown"
    lines.append(tensorrt_line(trt))
    pc = version("pycuda")
    lines.append(f"pycuda {pc}" if pc else "pycuda: not installed (pip install pycuda; "
                 "needs the CUDA toolkit)")
    for name in ("movenet_lightning", "movenet_thunder"):
        path = movenet_import.home() / f"{name}.onnx"
        state = "imported" if path.is_file() else (
            f"not imported (edgepose weights import {name.replace('_', '-')})")
        lines.append(f"MoveNet {name.split('_')[1]}: {state} [{path}]")
    for name in T.TEACHER_NAMES:
        try:
            T.check_available(name)
            ok = "ready"
        except Exception as e:  # noqa: BLE001 - TeacherError with the hint
            ok = f"unavailable: {e}"
        default = " (default)" if name == T.DEFAULT_TEACHER else ""
        lines.append(f"teacher {name}{default}: {ok}")
    models = sorted(p.name for p in ASSETS.glob("*.onnx"))
    lines.append(f"bundled models ({ASSETS}): {', '.join(models) or 'none'}")
    from edgepose.bundled import DEFAULT_BY_SIZE, DEFAULT_MODEL, NAMED_MODELS

    size_of = {n: s for s, n in DEFAULT_BY_SIZE.items()}
    names = [n + (" (default)" if ASSETS / f == DEFAULT_MODEL else
                  f" (the {size_of[n]}-px default)" if n in size_of else "")
             for n, f in NAMED_MODELS.items() if (ASSETS / f).is_file()]
    lines.append(f"models by name (--model NAME, edgepose.load(NAME)): {', '.join(names) or 'none'}")
    return lines


def run(args) -> int:
    for line in report():
        print(line)
    return 0

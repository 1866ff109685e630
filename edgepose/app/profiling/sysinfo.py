"""``system.json``: the machine and library versions a sweep ran on.

Linux details come from ``/proc`` (no psutil); every probe is best-effort, so a missing
field is ``None`` rather than an error. Libraries are looked up by distribution version
(``importlib.metadata``) so that e.g. TensorRT is not imported just to report its absence.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

# distribution names whose version is recorded (None when not installed)
LIBRARIES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "onnx": "onnx",
    "timm": "timm",
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python"),
    "numpy": "numpy",
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu11"),
    "pycuda": "pycuda",
    "edgepose": "edgepose",
}
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp")


def dist_version(names: str | tuple[str, ...]) -> str | None:
    for name in (names,) if isinstance(names, str) else names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_info(cpuinfo_text: str | None = None) -> dict[str, Any]:
    """CPU model name and the SIMD flags that matter for INT8 / FP32 speed."""
    if cpuinfo_text is None:
        try:
            cpuinfo_text = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo_text = ""
    model, flags = None, set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if model is None and key in ("model name", "hardware", "cpu model"):
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
    }


def ram_gb(meminfo_text: str | None = None) -> float | None:
    """Total RAM in GB (10^9 bytes) from /proc/meminfo."""
    if meminfo_text is None:
        try:
            meminfo_text = Path("/proc/meminfo").read_text()
        except OSError:
            return None
    for line in meminfo_text.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) * 1024 / 1e9, 1)
    return None


def gpu_info() -> dict[str, Any] | None:
    """Name / memory / compute capability of CUDA device 0 (via torch), or None."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        p = torch.cuda.get_device_properties(0)
        return {
            "name": p.name,
            "memory_gb": round(p.total_memory / 1e9, 1),
            "compute_capability": f"{p.major}.{p.minor}",
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
        }
    except Exception:
        return None


def jetson_model() -> str | None:
    """Board name on Jetson (device tree model), else None."""
    try:
        text = Path("/proc/device-tree/model").read_text(errors="ignore").strip("\x00 \n")
    except OSError:
        return None
    return text or None


def collect(threads: int | None = None) -> dict[str, Any]:
    """Everything ``system.json`` holds."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    gpu = gpu_info()
    machine = {
        **cpu_info(),
        "cpus_logical": os.cpu_count(),
        "cpus_usable": usable,
        "ram_gb": ram_gb(),
        "gpu": gpu["name"] if gpu else None,
        "gpu_details": gpu,
        "jetson": jetson_model(),
        "os": platform.platform(),
        "loadavg": load,
        "threads_used": threads,
    }
    versions = {"python": platform.python_version()}
    versions.update({k: dist_version(v) for k, v in LIBRARIES.items()})
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    except Exception:
        providers = None
    return {
        "machine": machine,
        "versions": versions,
        "onnxruntime_providers": providers,
    }


def write(path: str | os.PathLike, info: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path

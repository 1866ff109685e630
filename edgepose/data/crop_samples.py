"""The shared top-down sample pipeline of the COCO and MPII datasets.

A subclass fills ``self.samples`` with dicts holding ``file_name``, ``keypoints`` (K, 3)
[x, y, v] in image px (edgepose convention), ``center`` (2,) px and ``size`` (2,) px of the
crop (padding included, at the model's aspect ratio), ``image_id``, ``ann_id``, ``bbox``
[x, y, w, h] and ``area``; and may list extra per-sample float fields in ``extra_fields``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edgepose.data.files import read_image
from edgepose.data.transforms import (
    AugConfig, color_jitter, half_body, sample_affine, transform_keypoints, webcam_degrade,
)
from edgepose.coords import CROP_PADDING
from edgepose.errors import DataError
from edgepose.metadata import ModelMeta
from edgepose.preprocess import crop, normalize
from edgepose.skeleton import get_skeleton


class TopDownDataset(Dataset):
    """Base class. ``__getitem__`` returns a dict of tensors:

    image        (3, H, W) float32, normalised as ``meta`` says (edgepose.preprocess)
    keypoints    (K, 2) float32, input (crop) pixels; 0 for unlabelled joints
    visible      (K,) float32, 1 = labelled and inside the crop
    affine       (2, 3) float64, image px -> crop px (invert it to map predictions back)
    keypoints_image (K, 3) float32, the annotation's [x, y, v] in image px
    image_id, ann_id  int64 scalars; bbox (4,) float32 [x, y, w, h]; area float32 scalar
    (+ one float32 scalar per name in ``extra_fields``, e.g. MPII ``head_size``)

    With ``maps_stride`` set (dense teacher targets, :mod:`edgepose.data.teacher_maps`):
    teacher_maps (K, H/stride, W/stride) float32, the teacher's heatmaps warped into this
    sample's crop; teacher_mask float32 scalar, 1 if ``teacher_maps`` holds this person
    (0 and all-zero maps otherwise, so sources with and without maps batch together).
    """

    extra_fields: tuple[str, ...] = ()

    def __init__(self, image_root, meta: ModelMeta, train: bool = False,
                 aug: AugConfig | None = None, padding: float = CROP_PADDING):
        self.image_root = Path(image_root)
        self.meta = meta
        self.train = bool(train)
        self.aug = (aug or AugConfig()) if self.train else None
        self.padding = float(padding)
        self.skeleton = get_skeleton(meta.skeleton)
        self.flip_perm = self.skeleton.flip_permutation()
        self.samples: list[dict] = []
        self.teacher_maps = None  # a TeacherMaps store (set with use_teacher_maps)
        self.maps_stride = 0
        if not self.image_root.is_dir():
            raise DataError(f"{self.image_root}: image folder not found; check the path")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def output_wh(self) -> tuple[int, int]:
        """Crop size (W, H) in pixels."""
        return self.meta.width, self.meta.height

    def use_teacher_maps(self, store, stride: int) -> None:
        """Return ``teacher_maps`` / ``teacher_mask`` with every sample: from ``store`` (a
        :class:`~edgepose.data.teacher_maps.TeacherMaps`, or None: zeros, mask 0) on the
        grid of ``stride`` input pixels."""
        self.teacher_maps = store
        self.maps_stride = int(stride)

    def _teacher_fields(self, s: dict, m: np.ndarray, flipped: bool) -> dict:
        w, h = self.output_wh
        st = self.maps_stride
        row = self.teacher_maps.row(s["ann_id"]) if self.teacher_maps is not None else None
        if row is None:
            maps = np.zeros((self.meta.num_joints, -(-h // st), -(-w // st)), np.float32)
        else:
            maps = self.teacher_maps.warp(row, m, (w, h), st,
                                          self.flip_perm if flipped else None)
        return {"teacher_maps": torch.from_numpy(maps),
                "teacher_mask": torch.tensor(0.0 if row is None else 1.0)}

    def image_path(self, index: int) -> Path:
        return self.image_root / self.samples[index]["file_name"]

    def check_images(self, progress: bool = True) -> None:
        """Check that every image exists and decodes; DataError naming the first bad one."""
        from tqdm import tqdm
        seen = set()
        for i in tqdm(range(len(self)), desc="check images", disable=not progress):
            path = self.image_path(i)
            if path not in seen:
                read_image(path)
                seen.add(path)

    def _rng(self) -> np.random.Generator:
        # Drawn from torch's generator: seeded per DataLoader worker and by
        # torch.manual_seed, so augmentation is reproducible and differs across workers.
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s = self.samples[index]
        img = read_image(self.image_path(index))
        out_wh = self.output_wh
        kps = s["keypoints"]
        labelled = kps[:, 2] > 0
        center, size = s["center"], s["size"]
        aug = self.aug
        rng = self._rng() if aug is not None else None
        if aug is not None and aug.half_body_prob > 0 and rng.random() < aug.half_body_prob \
                and labelled.sum() >= aug.half_body_min_joints:
            hb = half_body(kps[:, :2], labelled, self.skeleton.name, out_wh[0] / out_wh[1], rng)
            if hb is not None:
                center, size = hb
        m, flipped = sample_affine(center, size, out_wh, aug, rng)
        pts, vis = transform_keypoints(kps[:, :2], labelled, m, out_wh,
                                       self.flip_perm if flipped else None)
        patch = crop(img, m, out_wh)
        if aug is not None and aug.color_jitter > 0:
            patch = color_jitter(patch, aug.color_jitter, rng)
        if aug is not None:
            patch = webcam_degrade(patch, aug, rng)
        out = {
            "image": torch.from_numpy(normalize(patch, self.meta)),
            "keypoints": torch.from_numpy(pts),
            "visible": torch.from_numpy(vis),
            "affine": torch.from_numpy(np.asarray(m, dtype=np.float64)),
            "keypoints_image": torch.from_numpy(kps.astype(np.float32)),
            "image_id": torch.tensor(s["image_id"], dtype=torch.int64),
            "ann_id": torch.tensor(s["ann_id"], dtype=torch.int64),
            "bbox": torch.tensor(s["bbox"], dtype=torch.float32),
            "area": torch.tensor(s["area"], dtype=torch.float32),
        }
        for name in self.extra_fields:
            out[name] = torch.tensor(s[name], dtype=torch.float32)
        if self.maps_stride:
            out.update(self._teacher_fields(s, m, flipped))
        return out

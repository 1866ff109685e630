"""Dense teacher targets: the teacher's keypoint heatmaps, stored once, warped per sample.

A store (a folder ``NAME.maps/``, written by :mod:`edgepose.engines.teacher_maps`) holds, for
every person of one COCO file, MoveNet Thunder's sigmoid keypoint heatmaps computed on the
full-resolution crop (``maps.npy``, (N, K, h, w) uint8 = round(255 * p)), the matrix that maps
image pixels to that map's pixels (``affine.npy``, (N, 2, 3)), the person's annotation id
(``ann_ids.npy``) and what made it (``info.json``).

Training never recomputes the teacher: :meth:`TeacherMaps.warp` carries the stored map into the
student's output grid through the *same* affine as the augmented crop (scale, rotation, shift,
flip; channels swapped left <-> right after a flip), so the geometric augmentation stays free.
Going from the teacher's finer grid to the student's coarser one, the map is first blurred by
half the scale ratio (an area average, so a sharp peak between two samples is not lost), each
joint's peak value kept (it is the teacher's confidence; the heatmap head learns it as is,
DSNT normalises the map to a distribution).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgepose.coords import compose_affine, invert_affine
from edgepose.errors import DataError

FORMAT = "edgepose-teacher-maps/1"
FILES = ("maps.npy", "affine.npy", "ann_ids.npy", "info.json")


def grid_affine(stride: float) -> np.ndarray:
    """Input (crop) pixels -> the pixels of a map of ``stride`` (pixel centres on integers
    in both, :mod:`edgepose.coords`): x_map = (x_in + 0.5) / stride - 0.5."""
    s = 1.0 / float(stride)
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5]], dtype=np.float64)


class TeacherMaps:
    """A read-only store; ``row(ann_id)`` -> index or None; ``warp(i, ...)`` -> the map in
    the student's grid. DataError naming the folder and the fix for a missing, partial or
    foreign store."""

    def __init__(self, folder, num_joints: int | None = None):
        self.folder = Path(folder)
        missing = [f for f in FILES if not (self.folder / f).is_file()]
        if missing:
            raise DataError(f"{self.folder}: not a teacher-map store (missing {missing}); "
                            "make it with 'python scripts/teacher_maps.py ANN.json IMAGES OUT'")
        try:
            self.info = json.loads((self.folder / "info.json").read_text())
            self.maps = np.load(self.folder / "maps.npy", mmap_mode="r")
            self.affine = np.load(self.folder / "affine.npy")
            ids = np.load(self.folder / "ann_ids.npy")
        except (ValueError, OSError, json.JSONDecodeError) as e:
            raise DataError(f"{self.folder}: unreadable teacher-map store ({e}); make it "
                            "again with scripts/teacher_maps.py") from None
        if self.info.get("format") != FORMAT:
            raise DataError(f"{self.folder}: format {self.info.get('format')!r}, expected "
                            f"{FORMAT!r}; make it again with scripts/teacher_maps.py")
        n = len(ids)
        if self.maps.ndim != 4 or self.maps.shape[0] != n or self.affine.shape != (n, 2, 3):
            raise DataError(f"{self.folder}: maps {self.maps.shape}, affine "
                            f"{self.affine.shape} and {n} ids disagree (an interrupted "
                            "write?); make it again with scripts/teacher_maps.py")
        if num_joints is not None and self.maps.shape[1] != num_joints:
            raise DataError(f"{self.folder}: {self.maps.shape[1]} joints per map, the model "
                            f"has {num_joints}")
        self.index = {int(a): i for i, a in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.index)

    def row(self, ann_id: int) -> int | None:
        return self.index.get(int(ann_id))

    def warp(self, i: int, image_to_crop: np.ndarray, out_wh: tuple[int, int], stride: int,
             flip_perm: list[int] | None = None) -> np.ndarray:
        """Row ``i``'s maps in the grid of a crop made by ``image_to_crop`` (2x3, image px ->
        crop px) of ``out_wh`` crop pixels, at ``stride``: (K, ceil(H/stride),
        ceil(W/stride)) float32 in [0, 1], 0 where the teacher's crop did not reach."""
        maps = np.asarray(self.maps[i], dtype=np.float32) * np.float32(1.0 / 255.0)
        to_student = compose_affine(grid_affine(stride), image_to_crop)
        a = compose_affine(to_student, invert_affine(self.affine[i]))  # teacher map -> student map
        ratio = 1.0 / np.sqrt(abs(np.linalg.det(a[:, :2])))  # teacher cells per student cell
        w, h = -(-int(out_wh[0]) // stride), -(-int(out_wh[1]) // stride)
        chw = maps.transpose(1, 2, 0)  # (h, w, K): OpenCV warps all channels at once
        if ratio > 1.5:  # area average, each joint's peak kept (the teacher's confidence)
            peak = chw.max(axis=(0, 1))
            chw = cv2.GaussianBlur(chw, (0, 0), sigmaX=0.5 * ratio)
            if chw.ndim == 2:  # one joint
                chw = chw[..., None]
            chw = chw * (peak / np.maximum(chw.max(axis=(0, 1)), 1e-6))
        out = cv2.warpAffine(chw, a, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if out.ndim == 2:
            out = out[..., None]
        out = np.ascontiguousarray(out.transpose(2, 0, 1))
        if flip_perm is not None:
            out = out[flip_perm]
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

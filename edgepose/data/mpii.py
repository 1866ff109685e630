"""MPII Human Pose in the common JSON format of mmpose / HRNet (``mpii_train.json`` ...).

Each record::

    {"image": "015601864.jpg", "center": [x, y], "scale": s,
     "joints": [[x, y] * 16], "joints_vis": [0/1 * 16], "head_box": [x1, y1, x2, y2]?}

Conventions, converted on reading:

* MPII coordinates come from Matlab and are **1-based**: the first pixel's centre is
  (1, 1). edgepose puts it at (0, 0), so ``center`` and ``joints`` lose 1 px on each axis.
* ``scale`` is the person box height / 200 px. As HRNet does, the centre is moved down by
  15 * scale px and the crop is a square of 200 * scale px times ``padding``
  (``CROP_PADDING`` = 1.25), grown to the model's aspect ratio.
* Head boxes (for PCKh) are not in the JSON. Pass the official ``gt_valid.mat``
  (``headboxes_src``, 2 x 2 x N, one box per record in file order) or give each record a
  ``head_box`` [x1, y1, x2, y2]. ``head_size`` = 0.6 * the head box diagonal (the standard
  PCKh normaliser, ``SC_BIAS`` in the MPII evaluation code); NaN when unknown.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgepose.coords import CROP_PADDING
from edgepose.data.files import read_json, require
from edgepose.data.crop_samples import TopDownDataset
from edgepose.data.transforms import AugConfig, grow_to_aspect
from edgepose.errors import DataError
from edgepose.metadata import ModelMeta

MPII_NUM_JOINTS = 16
PCKH_HEAD_FACTOR = 0.6


def head_size_from_box(box) -> float:
    """PCKh normaliser of a head box [x1, y1, x2, y2] (px): 0.6 * its diagonal."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return PCKH_HEAD_FACTOR * math.hypot(x2 - x1, y2 - y1)


def read_headboxes_mat(path) -> np.ndarray:
    """(N, 4) head boxes [x1, y1, x2, y2] from an MPII ``gt_valid.mat`` (``headboxes_src``)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MPII ground-truth .mat file not found; check the path")
    try:
        mat = loadmat(str(path))
    except Exception as e:  # scipy raises several types for a file that is not a .mat
        raise DataError(f"{path}: not a readable Matlab file ({type(e).__name__}: {e})") from None
    if "headboxes_src" not in mat:
        raise DataError(f"{path} has no 'headboxes_src' variable; is this MPII gt_valid.mat?")
    hb = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if hb.ndim != 3 or hb.shape[:2] != (2, 2):
        raise DataError(f"{path}: 'headboxes_src' has shape {hb.shape}; expected (2, 2, N)")
    # hb[corner, xy, n] -> (n, [x1, y1, x2, y2])
    return np.concatenate([hb[0].T, hb[1].T], axis=1)


def load_mpii_records(ann_file, headboxes: np.ndarray | None = None,
                      headboxes_name: str = "the head boxes file") -> list[dict]:
    """Validate MPII JSON records; return samples in edgepose (0-based) pixels, without
    the crop size (that depends on the model)."""
    data = read_json(ann_file, "MPII annotation file")
    src = str(ann_file)
    if not isinstance(data, list):
        raise DataError(f"{src}: expected a JSON list of MPII records, got "
                        f"{type(data).__name__}")
    if headboxes is not None and len(headboxes) != len(data):
        raise DataError(f"{src} has {len(data)} records but {headboxes_name} has "
                        f"{len(headboxes)} head boxes; use the .mat that belongs to this split")
    hint = "; is this an mmpose/HRNet-style MPII file?"
    samples = []
    for i, rec in enumerate(data):
        where = f"{src}: record {i}"
        require(rec, ("image", "center", "scale", "joints", "joints_vis"), where, hint)
        joints = np.asarray(rec["joints"], dtype=np.float64)
        vis = np.asarray(rec["joints_vis"], dtype=np.float64).reshape(-1)
        if joints.shape != (MPII_NUM_JOINTS, 2) or vis.shape != (MPII_NUM_JOINTS,):
            raise DataError(f"{where} has joints of shape {joints.shape} and joints_vis of "
                            f"{vis.shape}; expected (16, 2) and (16,)")
        scale = float(rec["scale"])
        center = np.asarray(rec["center"], dtype=np.float64).reshape(2)
        if scale <= 0:
            raise DataError(f"{where} has scale {scale}; it must be > 0 (box height / 200)")
        if center[0] != -1:
            center = center + [0.0, 15.0 * scale]  # HRNet's correction towards the body
        center = center - 1.0  # Matlab 1-based -> 0-based pixel centres
        kps = np.concatenate([joints - 1.0, (vis > 0)[:, None].astype(np.float64)], axis=1)
        kps[vis <= 0, :2] = 0.0
        if headboxes is not None:
            head_size = head_size_from_box(headboxes[i])
        elif "head_box" in rec:
            head_size = head_size_from_box(rec["head_box"])
        else:
            head_size = float("nan")
        box_side = 200.0 * scale
        samples.append({
            "file_name": rec["image"], "keypoints": kps, "center": center,
            "box_side": box_side, "head_size": head_size, "image_id": i, "ann_id": i,
            "bbox": [float(center[0] - box_side / 2 + 0.5), float(center[1] - box_side / 2 + 0.5),
                     box_side, box_side],
            "area": box_side * box_side,
        })
    return samples


class MpiiKeypoints(TopDownDataset):
    """Top-down MPII dataset with the same sample dict as :class:`CocoKeypoints`, plus
    ``head_size`` (float32 px, NaN if unknown). ``meta.skeleton`` must be ``"mpii16"``.
    ``image_id`` and ``ann_id`` are the record's index in the file."""

    extra_fields = ("head_size",)

    def __init__(self, ann_file, image_root, meta: ModelMeta, train: bool = False,
                 aug: AugConfig | None = None, padding: float = CROP_PADDING,
                 headboxes_mat=None):
        if meta.skeleton != "mpii16" or meta.num_joints != MPII_NUM_JOINTS:
            raise DataError(f"MPII data has 16 joints; the model uses joint set "
                            f"{meta.skeleton!r}; build it with skeleton='mpii16'")
        super().__init__(image_root, meta, train, aug, padding)
        self.ann_file = Path(ann_file)
        boxes = read_headboxes_mat(headboxes_mat) if headboxes_mat is not None else None
        samples = load_mpii_records(self.ann_file, boxes, str(headboxes_mat))
        w, h = self.output_wh
        for s in samples:
            side = s.pop("box_side")
            s["size"] = grow_to_aspect((side, side), w / h) * self.padding
        self.samples = samples

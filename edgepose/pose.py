"""One person's :class:`Pose`, and the top-down path that makes it, written once::

    image + person boxes --crop_people--> (N, 3, H, W) float32 batch + N image->crop 2x3
      (a box: CROP_PADDING;                 |
       no box: whole_image_box)             | infer: ONE backend call for any N (a Backend
                                            v   fits it to its own batch range)
    N x Pose <------crop_to_image------ coords (N, K, 2) input px, scores (N, K)

Which crop is decided in :mod:`edgepose.coords` (:data:`~edgepose.coords.CROP_PADDING`
around a person box, :func:`~edgepose.coords.whole_image_box` without one) and every crop
is :func:`edgepose.preprocess.preprocess`. The API's ``predict`` and ``track``, the live
pipeline (stage by stage, so each stage is timed), ``edgepose predict`` and evaluation
use these functions and return this type, so they cannot crop or map back differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from edgepose.coords import CROP_PADDING, apply_affine, invert_affine, whole_image_box
from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta
from edgepose.preprocess import preprocess


@dataclass
class Pose:
    """One person: ``box`` [x, y, w, h] the crop was taken from and ``keypoints`` (K, 2),
    both in image pixels; ``scores`` (K,) in [0, 1]; ``names`` the K joint names.
    ``pose["left_wrist"]`` -> array([x, y, score]). Live tracking also sets ``track_id``
    and ``raw`` (this frame's unsmoothed keypoints; ``keypoints`` are then smoothed); a
    person found by the detector has its ``box_score``."""

    box: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    track_id: int | None = None
    names: tuple[str, ...] = field(default=(), repr=False)
    raw: np.ndarray | None = field(default=None, repr=False)
    box_score: float | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            i = self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r}; this model's joints are {list(self.names)}") from None
        return np.array([self.keypoints[i, 0], self.keypoints[i, 1], self.scores[i]])

    @property
    def score(self) -> float:
        """Person score: the mean joint score, times the detector's ``box_score`` where a
        detector found the person (how top-down systems rank people for OKS AP)."""
        joints = float(np.mean(self.scores))
        return joints if self.box_score is None else joints * float(self.box_score)

    def to_dict(self) -> dict:
        """COCO-style: ``keypoints`` flat [x, y, score] x K, ``bbox``, ``score``."""
        kp = np.concatenate([self.keypoints, self.scores[:, None]], axis=1).reshape(-1)
        d = {"bbox": [round(float(v), 2) for v in self.box],
             "keypoints": [round(float(v), 3) for v in kp], "score": round(self.score, 4)}
        if self.track_id is not None:
            d["track_id"] = int(self.track_id)
        return d


def person_crops(image_bgr: np.ndarray, boxes: Sequence | None,
                 padding: float = CROP_PADDING) -> tuple[list[np.ndarray], list[float]]:
    """(boxes xywh float64, paddings) to crop from one image: each given box with
    ``padding``, or, when ``boxes`` is None, the whole image
    (:func:`edgepose.coords.whole_image_box`)."""
    if boxes is None:
        box, pad = whole_image_box(image_bgr.shape[1], image_bgr.shape[0])
        return [box], [pad]
    out = [np.asarray(b, dtype=np.float64).reshape(4) for b in boxes]
    return out, [float(padding)] * len(out)


def crop_people(meta: ModelMeta, image_bgr: np.ndarray, boxes,
                paddings) -> tuple[np.ndarray, list[np.ndarray]]:
    """Crop every (box xywh, padding) of ``image_bgr`` with
    :func:`edgepose.preprocess.preprocess` -> ((N, 3, H, W) float32 batch, N image->crop
    2x3 matrices)."""
    inputs, mats = [], []
    for box, pad in zip(boxes, paddings):
        x, m = preprocess(image_bgr, box, meta, padding=pad)
        inputs.append(x)
        mats.append(m)
    return np.stack(inputs).astype(np.float32, copy=False), mats


def infer(backend, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, H, W) float32 crops -> coords (N, K, 2) input px, scores (N, K) float64, in
    ONE call: a :class:`edgepose.engines.backend.Backend` takes any N and fits it to its
    batch range itself."""
    out = backend(batch)
    return np.asarray(out["coords"]), np.asarray(out["scores"], dtype=np.float64)


def crop_to_image(coords_crop: np.ndarray, affine) -> np.ndarray:
    """(N, K, 2) crop (input) pixels + N image->crop 2x3 matrices ((N, 2, 3) array or a
    list) -> (N, K, 2) image pixels, float64: each crop's inverse affine."""
    coords_crop = np.asarray(coords_crop, dtype=np.float64)
    if coords_crop.ndim != 3 or coords_crop.shape[0] != len(affine) or coords_crop.shape[-1] != 2:
        raise EngineError(f"coords of shape {coords_crop.shape} for {len(affine)} crops; "
                          "expected (N, K, 2) (a backend returns coords (N, K, 2))")
    out = np.empty_like(coords_crop)
    for i, m in enumerate(affine):
        out[i] = apply_affine(coords_crop[i], invert_affine(m))
    return out


OKS_NMS = 0.9  # two people whose keypoints agree this well are one person (HRNet's value)


def oks(a: np.ndarray, b: np.ndarray, area: float, sigmas) -> float:
    """COCO's object keypoint similarity of two (K, 2) keypoint sets, for a person of
    ``area`` px^2 (each joint's falloff ``sigmas`` (K,), COCO's definition)."""
    k2 = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    d2 = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(-1)
    return float(np.mean(np.exp(-d2 / (2.0 * max(float(area), 1.0) * k2))))


def oks_nms(poses: Sequence[Pose], sigmas, threshold: float = OKS_NMS) -> list[Pose]:
    """People best :attr:`Pose.score` first, a person dropped when its keypoints agree
    with a better one's at OKS > ``threshold`` (a duplicate detection of one person),
    the area being the better one's box."""
    kept: list[Pose] = []
    for p in sorted(poses, key=lambda q: -q.score):
        if all(oks(p.keypoints, q.keypoints, q.box[2] * q.box[3], sigmas) <= threshold
               for q in kept):
            kept.append(p)
    return kept


def detected_people(poses: Sequence[Pose], box_scores, sigmas,
                    threshold: float = OKS_NMS) -> list[Pose]:
    """The top-down finish for detector boxes: each pose gets its box's score (so
    :attr:`Pose.score` = box score x mean joint score), duplicates go (:func:`oks_nms`;
    skipped for a joint set without OKS sigmas), best first."""
    poses = list(poses)
    if len(poses) != len(box_scores):
        raise EngineError(f"{len(poses)} poses for {len(box_scores)} box scores")
    for p, s in zip(poses, box_scores):
        p.box_score = float(s)
    if sigmas is None:
        return sorted(poses, key=lambda q: -q.score)
    return oks_nms(poses, sigmas, threshold)

"""One person's :class:`Pose` (what every path that finds people returns) and how people
are compared: COCO's OKS and the OKS NMS that removes duplicate detections of one person.
The path that makes poses from boxes is :mod:`edgepose.topdown`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from edgepose.errors import EngineError


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

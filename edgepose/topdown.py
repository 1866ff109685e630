"""The top-down path, written once: person boxes -> crops -> ONE model call -> people.

::

    image --PersonBoxes (one policy per kind of box)--> boxes + paddings (+ detector scores)
      ground truth / user boxes: CROP_PADDING (1.25)      |
      detector boxes: the detector file's crop_padding    | crop_people: preprocess each
        (measured for that detector), its box scores,      |   (found people: the others'
        confident people masked in each crop               v   boxes masked) + N affines
      tracked boxes: the track's padding, others masked infer: ONE backend call for any N
      no box: the whole image (whole_image_box)            |
                                                           v
    list[Pose] <--finish (box score x joint score,--- crop_to_image (inverse affines)
                          OKS NMS for detector boxes)

Everything that asks for poses goes through here -- the API's ``predict`` (one person per
box, or every person with the detector), ``edgepose predict`` / ``eval --boxes``, the live
pipeline (stage by stage, so each stage is timed; the same functions), the teacher and
``adapt`` -- so the same box in gives the same crop and the same keypoints out: live equals
offline. Training crops are built by ``edgepose.data.crop_samples`` from the same
:func:`edgepose.preprocess.box_affine` with augmentation on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from edgepose.coords import CROP_PADDING, apply_affine, invert_affine, whole_image_box
from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta
from edgepose.pose import Pose, detected_people
from edgepose.preprocess import preprocess


@dataclass
class PersonBoxes:
    """Where to crop one image, by one policy: ``boxes`` xywh image px (float64),
    ``paddings`` one per box, ``scores`` the detector's box scores (None for boxes no
    detector found: ground truth, a user's, tracked, the whole image); ``hide``: one flag
    per box, True where that box is a person the OTHER crops hide (:func:`crop_people`) --
    set for people a detector found with a confident score, None for given boxes (ground
    truth is scored on the crops the models were trained on: neighbours visible)."""

    boxes: list[np.ndarray] = field(default_factory=list)
    paddings: list[float] = field(default_factory=list)
    scores: list[float] | None = None
    hide: list[bool] | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def whole(cls, image_bgr: np.ndarray) -> "PersonBoxes":
        """No box: the whole image, padded to the model's aspect (:func:`whole_image_box`)."""
        box, pad = whole_image_box(image_bgr.shape[1], image_bgr.shape[0])
        return cls([box], [pad])

    @classmethod
    def given(cls, boxes, padding: float = CROP_PADDING) -> "PersonBoxes":
        """Ground-truth or user boxes: each padded by ``padding`` (COCO's top-down 1.25)."""
        out = [np.asarray(b, dtype=np.float64).reshape(4) for b in boxes]
        return cls(out, [float(padding)] * len(out))

    @classmethod
    def detected(cls, detector, image_bgr: np.ndarray) -> "PersonBoxes":
        """The detector's people in ``image_bgr``, best first, padded by the detector
        file's own ``crop_padding`` (measured for its boxes), with their scores."""
        boxes, scores = detector(image_bgr)
        return cls.from_detections(boxes, scores, detector.crop_padding,
                                   getattr(detector, "live_threshold", None))

    @classmethod
    def from_detections(cls, boxes, scores, padding: float,
                        hide_from: float | None = None) -> "PersonBoxes":
        """Detector boxes + scores, each padded by ``padding``; the boxes scoring at least
        ``hide_from`` (the detector's live threshold: a confident person, the people live
        tracking starts; None = every box) are hidden in the other people's crops."""
        out = [np.asarray(b, dtype=np.float64).reshape(4) for b in boxes]
        scores = [float(s) for s in scores]
        hide = [hide_from is None or s >= float(hide_from) for s in scores]
        return cls(out, [float(padding)] * len(out), scores, hide)

    @classmethod
    def of(cls, image_bgr: np.ndarray, boxes=None,
           padding: float = CROP_PADDING) -> "PersonBoxes":
        """``boxes``: a PersonBoxes (kept), None (the whole image) or a list of boxes."""
        if isinstance(boxes, PersonBoxes):
            return boxes
        return cls.whole(image_bgr) if boxes is None else cls.given(boxes, padding)


def crop_people(meta: ModelMeta, image_bgr: np.ndarray, boxes,
                paddings, hide=None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Crop every (box xywh, padding) of ``image_bgr`` with
    :func:`edgepose.preprocess.preprocess` -> ((N, 3, H, W) float32 batch, N image->crop
    2x3 matrices). ``hide`` (one flag per box, or None): in each crop, the parts of the
    OTHER flagged boxes that lie outside this person's own box are filled with the crop's
    mean colour, so a neighbour inside a padded crop cannot pull the pose onto itself
    (measured: a tracked person walking beside another kept its identity, IDF1 0.78 -> 0.91
    on the ground-truth clip, and ``predict --multi`` OKS AP 0.338 -> 0.353 / 0.328 -> 0.376
    on the COCO subsets; docs/benchmarks.md)."""
    inputs, mats = [], []
    for i, (box, pad) in enumerate(zip(boxes, paddings)):
        others = [b for j, b in enumerate(boxes) if hide is not None and hide[j] and j != i]
        x, m = preprocess(image_bgr, box, meta, padding=pad, hide=others)
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


def finish(poses: list[Pose], boxes: PersonBoxes, sigmas) -> list[Pose]:
    """One image's people: as found for given boxes (one per box, in order); for detector
    boxes each gets its ``box_score`` (person score = box score x mean joint score) and
    duplicates of one person go (OKS NMS), best first."""
    if boxes.scores is None:
        return poses
    return detected_people(poses, boxes.scores, sigmas)


def predict_people(backend, meta: ModelMeta, images: Sequence[np.ndarray],
                   boxes: Sequence[PersonBoxes], batch: int | None = None) -> list[list[Pose]]:
    """Every image's people: all crops of all images through the backend in one call (or
    calls of at most ``batch`` crops), mapped back and finished per image."""
    from edgepose.skeleton import get_skeleton

    crops, owners = [], []
    for i, (img, pb) in enumerate(zip(images, boxes)):
        if not len(pb):
            continue
        x, mats = crop_people(meta, img, pb.boxes, pb.paddings, pb.hide)
        crops += list(x)
        owners += [(i, b, m) for b, m in zip(pb.boxes, mats)]
    raw: list[list[Pose]] = [[] for _ in images]
    names = tuple(meta.joints)
    step = max(1, batch or len(crops))
    for s in range(0, len(crops), step):
        chunk = owners[s:s + step]
        coords, scores = infer(backend, np.stack(crops[s:s + step]))
        image_xy = crop_to_image(coords, [m for _, _, m in chunk])
        for (i, b, _), c, sc in zip(chunk, image_xy, scores):
            raw[i].append(Pose(b, c, sc, names=names))
    sigmas = get_skeleton(meta.skeleton).sigmas if any(b.scores is not None for b in boxes) \
        else None
    return [finish(p, b, sigmas) for p, b in zip(raw, boxes)]

"""Top-down sample transforms: person box -> crop affine (+ augmentation) -> keypoints.

Every geometric augmentation (scale, rotation, shift, horizontal flip, half-body) is folded
into ONE 2x3 image->crop matrix, so the image is warped once (``edgepose.preprocess.crop``)
and the keypoints are moved by exactly the same matrix (``edgepose.coords.apply_affine``).
A flip is the crop-space mirror ``x -> W - 1 - x`` composed after the crop; the left/right
joints are then swapped so "left_wrist" still names the person's left wrist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.coords import apply_affine, compose_affine, crop_affine, flip_affine

# Joints of the upper body per joint set (the rest is the lower body), for half-body aug.
UPPER_BODY = {
    "coco17": tuple(range(0, 11)),
    "mpii16": (7, 8, 9, 10, 11, 12, 13, 14, 15),
}


@dataclass
class AugConfig:
    """Training augmentation. Angles in degrees; ``scale``/``shift`` relative to the box.

    scale:         crop size multiplied by U(1 - scale, 1 + scale)
    rotation:      rotate by U(-rotation, rotation) with probability ``rotation_prob``
    flip_prob:     horizontal flip (with left/right swap)
    shift:         move the crop centre by U(-shift, shift) * crop size, per axis
    half_body_prob: crop only the upper or lower body (needs ``half_body_min_joints``
                   labelled joints); off by default
    color_jitter:  brightness/contrast change of up to this fraction (0 = off)

    Webcam conditions (all off by default; the real-people configs switch them on):
    dark_prob:     darken with a gamma in [1.5, 3] and a gain in [0.4, 0.9] (low light)
    blur_prob:     Gaussian blur, sigma U(0.5, 1.5) crop px (defocus, motion)
    downsample_prob: shrink the crop to ``downsample_min`` .. full size and back (a person
                   seen at 64-128 px, or a low-resolution camera)
    occluder_prob: paint one random grey/colour rectangle of 10-40 % of the crop side
    """

    scale: float = 0.3
    rotation: float = 40.0
    rotation_prob: float = 0.6
    flip_prob: float = 0.5
    shift: float = 0.0
    half_body_prob: float = 0.0
    half_body_min_joints: int = 8
    color_jitter: float = 0.0
    dark_prob: float = 0.0
    blur_prob: float = 0.0
    downsample_prob: float = 0.0
    downsample_min: float = 0.4
    occluder_prob: float = 0.0


def grow_to_aspect(size_wh, aspect_wh: float) -> np.ndarray:
    """Grow (w, h) to the aspect ratio W / H = ``aspect_wh`` (never shrink)."""
    w, h = max(float(size_wh[0]), 1.0), max(float(size_wh[1]), 1.0)
    if w > aspect_wh * h:
        h = w / aspect_wh
    else:
        w = h * aspect_wh
    return np.array([w, h], dtype=np.float64)


def half_body(keypoints: np.ndarray, labelled: np.ndarray, skeleton: str, aspect_wh: float,
              rng: np.random.Generator, padding: float = 1.5):
    """Centre and size (px) of a box around the upper or lower body's labelled joints, or
    None when the chosen half has fewer than two. ``keypoints`` (K, 2), ``labelled`` (K,)."""
    upper = set(UPPER_BODY.get(skeleton, ()))
    if not upper:
        return None
    idx = np.arange(len(keypoints))
    in_upper = np.array([i in upper for i in idx])
    pick = in_upper if rng.random() < 0.5 else ~in_upper
    pts = keypoints[pick & labelled]
    if len(pts) < 2:
        pts = keypoints[~pick & labelled]
    if len(pts) < 2:
        return None
    lo, hi = pts.min(0), pts.max(0)
    center = (lo + hi) / 2
    return center, grow_to_aspect(hi - lo, aspect_wh) * padding


def sample_affine(center, size_wh, output_wh: tuple[int, int], aug: AugConfig | None,
                  rng: np.random.Generator | None) -> tuple[np.ndarray, bool]:
    """(2x3 image->crop matrix, flipped?) for a crop of ``size_wh`` px around ``center``.

    Without ``aug`` this is exactly ``crop_affine(center, size_wh, output_wh)``.
    """
    center = np.asarray(center, dtype=np.float64)
    size = np.asarray(size_wh, dtype=np.float64)
    if aug is None or rng is None:
        return crop_affine(center, size, output_wh), False
    size = size * rng.uniform(1 - aug.scale, 1 + aug.scale)
    if aug.shift > 0:
        center = center + rng.uniform(-aug.shift, aug.shift, size=2) * size
    rot = 0.0
    if rng.random() < aug.rotation_prob:
        rot = rng.uniform(-aug.rotation, aug.rotation)
    m = crop_affine(center, size, output_wh, rot)
    flipped = bool(rng.random() < aug.flip_prob)
    if flipped:
        m = compose_affine(flip_affine(output_wh[0]), m)
    return m, flipped


def transform_keypoints(keypoints: np.ndarray, labelled: np.ndarray, affine: np.ndarray,
                        output_wh: tuple[int, int], flip_perm: list[int] | None = None):
    """Image keypoints (K, 2) px + labelled (K,) bool -> crop keypoints (K, 2) float32 and
    visible (K,) float32 (1 = labelled and inside the crop). ``flip_perm`` reorders joints
    after a flip (left <-> right). Unlabelled joints get coordinates 0."""
    pts = apply_affine(keypoints, affine)
    lab = np.asarray(labelled, dtype=bool).copy()
    if flip_perm is not None:
        pts = pts[flip_perm]
        lab = lab[flip_perm]
    w, h = output_wh
    x, y = pts[:, 0], pts[:, 1]
    inside = (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
    vis = lab & inside
    pts = np.where(lab[:, None], pts, 0.0)
    return pts.astype(np.float32), vis.astype(np.float32)


def color_jitter(img: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness and contrast change of up to ``amount`` (fraction). uint8 in/out."""
    if amount <= 0:
        return img
    alpha = 1.0 + rng.uniform(-amount, amount)
    beta = 255.0 * rng.uniform(-amount, amount) * 0.5
    mean = float(img.mean())
    out = (img.astype(np.float32) - mean) * alpha + mean + beta
    return np.clip(out, 0, 255).astype(np.uint8)


def webcam_degrade(img: np.ndarray, aug: AugConfig, rng: np.random.Generator) -> np.ndarray:
    """Low light, blur, down-sampling and one occluder, each with its probability in
    ``aug``. (H, W, 3) uint8 in and out; geometry (and so the keypoints) is unchanged."""
    import cv2

    h, w = img.shape[:2]
    if aug.dark_prob > 0 and rng.random() < aug.dark_prob:
        gamma, gain = rng.uniform(1.5, 3.0), rng.uniform(0.4, 0.9)
        lut = (255.0 * gain * (np.arange(256) / 255.0) ** gamma).clip(0, 255).astype(np.uint8)
        img = lut[img]
    if aug.blur_prob > 0 and rng.random() < aug.blur_prob:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    if aug.downsample_prob > 0 and rng.random() < aug.downsample_prob:
        f = rng.uniform(aug.downsample_min, 1.0)
        small = cv2.resize(img, (max(int(w * f), 8), max(int(h * f), 8)),
                           interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if aug.occluder_prob > 0 and rng.random() < aug.occluder_prob:
        ow, oh = (rng.uniform(0.1, 0.4, size=2) * (w, h)).astype(int)
        x0, y0 = rng.integers(0, max(w - ow, 1)), rng.integers(0, max(h - oh, 1))
        img = img.copy()
        img[y0:y0 + oh, x0:x0 + ow] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return img

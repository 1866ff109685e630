"""Arbitrary-resolution heatmaps from a NerPE model.

A NerPE head is a continuous function of the query position, so a joint's heatmap can be
rendered at any resolution - 32x32 or 1024x1024 - from one backbone pass, independent of
the model's input size. Used by ``edgepose nerpe-map``. (Not to be confused with the heatmap
*head*, :mod:`edgepose.models.heatmap`, which any model may use.)
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from edgepose.coords import CROP_PADDING, box_to_center_scale, crop_affine
from edgepose.errors import DataError, ModelError
from edgepose.preprocess import crop, preprocess


def joint_index(joints: list[str], joint: str | int | None) -> int | None:
    """Joint name / index -> index; None or 'all' -> None (max over all joints)."""
    if joint is None or (isinstance(joint, str) and joint.lower() == "all"):
        return None
    if isinstance(joint, str) and joint.isdigit():
        joint = int(joint)
    if isinstance(joint, int):
        if not 0 <= joint < len(joints):
            raise ModelError(f"joint index {joint} is out of range; the model has "
                             f"{len(joints)} joints (0..{len(joints) - 1})")
        return joint
    if joint not in joints:
        raise ModelError(f"unknown joint {joint!r}; choose 'all' or one of: {', '.join(joints)}")
    return joints.index(joint)


@torch.no_grad()
def render_heatmap(model, image_bgr: np.ndarray, box=None, joint: str | int | None = None,
                   resolution: int | tuple[int, int] = 256,
                   padding: float = CROP_PADDING) -> np.ndarray:
    """Continuous heatmap of one joint (or all, max-projected) on a person crop.

    model: a NerPE ``PoseModel`` (``model.meta`` describes it). image_bgr: (H, W, 3) uint8.
    box: person box (x, y, w, h) in image pixels, cropped as the model's preprocessing
    does with ``padding``; None: the whole image (:func:`edgepose.coords.whole_image_box`).
    resolution: int (height; width follows the model's aspect) or (h, w). Returns an (h, w) float32 array of confidences; pixel (i, j) is the
    query at the centre of that pixel in the crop's normalised space.
    """
    from edgepose.models.nerpe_decoding import aspect_size, pixel_centres

    meta = model.meta
    if meta.head != "nerpe":
        raise ModelError(f"model {meta.name!r} has a {meta.head!r} head; arbitrary-resolution "
                         "heatmaps need a NerPE model (head 'nerpe')")
    k = joint_index(list(meta.joints), joint)
    from edgepose.topdown import PersonBoxes

    where = PersonBoxes.of(image_bgr, None if box is None else [box], padding)
    x, _ = preprocess(image_bgr, where.boxes[0], meta, where.paddings[0])
    h, w = aspect_size(resolution, meta.input_size)
    if h < 1 or w < 1 or h * w > 4096 * 4096:
        raise DataError(f"heatmap resolution {h}x{w} is out of range (1 .. 4096 per side)")
    was_training = model.training
    model.eval()
    try:
        grid = model.head.feature_grid(model.backbone(torch.from_numpy(x)[None]))
        pts = pixel_centres(h, w)
        rows = []
        for chunk in torch.split(pts, 65536):  # bounded memory at large resolutions
            conf = model.head.confidences_from_grid(grid, chunk[None])[0]  # (n, K)
            rows.append(conf.amax(-1) if k is None else conf[:, k])
        heat = torch.cat(rows).reshape(h, w)
    finally:
        model.train(was_training)
    return heat.float().numpy()


def crop_at(image_bgr: np.ndarray, box, input_hw: tuple[int, int], out_hw: tuple[int, int],
            padding: float = CROP_PADDING) -> np.ndarray:
    """The model's crop of ``box`` resampled directly at ``out_hw`` (h, w) pixels."""
    ih, iw = input_hw
    center, size = box_to_center_scale(box, iw / ih, padding)
    m = crop_affine(center, size, (out_hw[1], out_hw[0]))
    return crop(image_bgr, m, (out_hw[1], out_hw[0]))


def overlay(crop_bgr: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour-mapped heatmap (clamped to [0, 1]) over a same-size BGR crop; marks the peak."""
    v = np.clip(heat, 0.0, 1.0)
    colour = cv2.applyColorMap((v * 255).astype(np.uint8), cv2.COLORMAP_JET)
    out = cv2.addWeighted(crop_bgr, 1.0 - alpha, colour, alpha, 0.0)
    py, px = np.unravel_index(int(np.argmax(heat)), heat.shape)
    radius = max(2, min(heat.shape) // 64)
    cv2.circle(out, (int(px), int(py)), radius, (255, 255, 255), 1, cv2.LINE_AA)
    return out

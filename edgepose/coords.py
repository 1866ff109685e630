"""THE coordinate convention of edgepose, and the crop affine transforms.

Pixel coordinates put pixel *centres* on integers; pixel *edges* sit at integer +- 0.5.
Normalised coordinates (the DSNT / dsntnn convention) put the image *edges* at -1 and +1::

      pixel index      0         1         2     ...    W-1
                  |---------|---------|---------|...|---------|
      pixel x   -0.5   0   0.5   1   1.5   2   2.5   W-1.5 W-1 W-0.5
      norm  u    -1   1/W-1                                1-1/W  +1

      u = (2 * x + 1) / W - 1          x = ((u + 1) * W - 1) / 2

A heatmap of width w covering an input of width W (stride s = W / w) uses the same
normalised space, so a heatmap pixel x_hm maps to input pixel x_in = (x_hm + 0.5) * s - 0.5.

Crops: :func:`crop_affine` builds the 2x3 matrix that maps *image* pixels to *crop* pixels
in this convention, exactly as ``cv2.warpAffine(img, M, (W, H))`` samples it (OpenCV also
puts pixel centres on integers). A box [x0, x0 + bw] maps onto the crop's edges
[-0.5, W - 0.5].
"""

from __future__ import annotations

import math

import numpy as np

# ----------------------------------------------------------------------------- pixels <-> norm


def pixel_to_norm(x, size):
    """Pixel coordinate(s) -> normalised coordinate(s). Works on floats, numpy and torch."""
    return (2 * x + 1) / size - 1


def norm_to_pixel(u, size):
    """Normalised coordinate(s) -> pixel coordinate(s). Inverse of :func:`pixel_to_norm`."""
    return ((u + 1) * size - 1) / 2


def _pair(like, x: float, y: float):
    """A length-2 vector of ``like``'s kind (torch tensor or numpy), for broadcasting over (..., 2).

    Broadcasting (instead of writing x and y into slices) keeps exported ONNX graphs free of
    ScatterND nodes, which TensorRT handles poorly.
    """
    if hasattr(like, "new_tensor"):
        return like.new_tensor([x, y])
    return np.array([x, y], dtype=np.result_type(like, np.float32))


def pixel_to_norm_xy(xy, width: int, height: int):
    """(..., 2) xy pixels -> (..., 2) normalised, x by width and y by height."""
    return (2 * xy + 1) / _pair(xy, width, height) - 1


def norm_to_pixel_xy(uv, width: int, height: int):
    """(..., 2) normalised -> (..., 2) xy pixels. Inverse of :func:`pixel_to_norm_xy`."""
    return ((uv + 1) * _pair(uv, width, height) - 1) / 2


def heatmap_to_input(xy_hm, stride_x: float, stride_y: float):
    """(..., 2) heatmap pixels -> input pixels (same normalised space)."""
    return (xy_hm + 0.5) * _pair(xy_hm, stride_x, stride_y) - 0.5


def input_to_heatmap(xy_in, stride_x: float, stride_y: float):
    """(..., 2) input pixels -> heatmap pixels. Inverse of :func:`heatmap_to_input`."""
    return (xy_in + 0.5) / _pair(xy_in, stride_x, stride_y) - 0.5


# ----------------------------------------------------------------------------- boxes and crops

# The crop padding of a person box (training, evaluation, calibration, the live app, the
# API): the box grown to the crop's aspect ratio, then by this factor (mmpose's
# GetBBoxCenterScale(padding=1.25)).
CROP_PADDING = 1.25

# No person box: the crop is the whole image at this padding (the photo's own edges are
# the frame). Measured with the bundled real_heatmap_128.onnx, predict with no boxes:
#   padding                          1.0     1.1     1.25    1.5
#   LSP test im1001-2000 (1000 imgs) 0.671   0.645   0.614   0.533   torso PCK@0.2, 12 limb joints
#   tests/assets/lsp (12 committed)  0.715   0.722   0.618   0.569   torso PCK@0.2
#   coco-mini val2017 (14 people)    0.540   0.533   0.433   0.460   bbox PCK@0.1
#   tiny-coco val2017 (6 people)     0.305   0.237   0.237   0.237   bbox PCK@0.1
# (single-person photos only; tests/assets/coco has 2: 3/14 vs 4/14 joints, too few to
# count). Padding a whole image only shrinks the person inside the model's input.
WHOLE_IMAGE_PADDING = 1.0


def whole_image_box(width: int, height: int) -> tuple[np.ndarray, float]:
    """The crop when no person box is given: (xywh box of the whole image, its padding
    :data:`WHOLE_IMAGE_PADDING`). Every top-down caller (the API's predict, the live
    pipeline, calibration, heatmaps) asks this one rule."""
    return np.array([0.0, 0.0, float(width), float(height)]), WHOLE_IMAGE_PADDING


def box_to_center_scale(
    box_xywh, aspect_wh: float, padding: float = CROP_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """COCO box (x, y, w, h; x, y = top-left *edge*) -> centre (px) and size (w, h, px).

    The size is grown to the crop's aspect ratio ``aspect_wh`` = W / H (never shrunk) and
    then multiplied by ``padding`` so limbs near the box edge stay inside the crop.
    A COCO box's edges are pixel edges, so its centre in our convention is
    x + w / 2 - 0.5.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    center = np.array([x + w / 2 - 0.5, y + h / 2 - 0.5], dtype=np.float64)
    w = max(w, 1.0)
    h = max(h, 1.0)
    if w > aspect_wh * h:
        h = w / aspect_wh
    else:
        w = h * aspect_wh
    return center, np.array([w * padding, h * padding], dtype=np.float64)


def crop_affine(
    center, size_wh, output_wh: tuple[int, int], rotation_deg: float = 0.0
) -> np.ndarray:
    """2x3 matrix mapping image pixels to crop pixels.

    ``center`` (px) lands on the crop centre ((W-1)/2, (H-1)/2); a region of ``size_wh``
    pixels around it fills the crop; ``rotation_deg`` rotates the *content*
    counter-clockwise (as seen on screen) around the centre.
    Matrix = T(crop centre) @ R @ S @ T(-center).
    """
    out_w, out_h = output_wh
    sx = out_w / float(size_wh[0])
    sy = out_h / float(size_wh[1])
    a = math.radians(rotation_deg)
    cos, sin = math.cos(a), math.sin(a)
    # Image y points down, so a counter-clockwise turn on screen is R = [[c, s], [-s, c]].
    rot = np.array([[cos, sin], [-sin, cos]], dtype=np.float64)
    lin = rot @ np.diag([sx, sy])
    c = np.asarray(center, dtype=np.float64)
    t = np.array([(out_w - 1) / 2.0, (out_h - 1) / 2.0]) - lin @ c
    return np.concatenate([lin, t[:, None]], axis=1)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (also 2x3)."""
    m = np.asarray(m, dtype=np.float64)
    lin_inv = np.linalg.inv(m[:, :2])
    return np.concatenate([lin_inv, (-lin_inv @ m[:, 2])[:, None]], axis=1)


def apply_affine(points, m) -> np.ndarray:
    """Apply a 2x3 matrix to (..., 2) points; returns float64 (..., 2)."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def flip_affine(width: int) -> np.ndarray:
    """2x3 matrix of a horizontal flip of an image ``width`` pixels wide: x -> W - 1 - x."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def compose_affine(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of applying ``first`` then ``second``."""
    a = np.vstack([np.asarray(first, dtype=np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(second, dtype=np.float64), [0.0, 0.0, 1.0]])
    return (b @ a)[:2]

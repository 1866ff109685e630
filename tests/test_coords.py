"""The coordinate convention (edgepose.coords): converters, crops, and agreement with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edgepose.coords import (
    apply_affine, box_to_center_scale, compose_affine, crop_affine, flip_affine,
    heatmap_to_input, input_to_heatmap, invert_affine, norm_to_pixel, norm_to_pixel_xy,
    pixel_to_norm, pixel_to_norm_xy,
)


def centroid(img: np.ndarray) -> np.ndarray:
    """Intensity-weighted centroid (x, y) of a single-channel image, in px."""
    w = img.astype(np.float64)
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


# ----------------------------------------------------------------------------- pixels <-> norm


def test_norm_golden_values():
    w = 8
    assert pixel_to_norm(-0.5, w) == -1.0, "left pixel edge must be -1"
    assert pixel_to_norm(w - 0.5, w) == 1.0, "right pixel edge must be +1"
    assert pixel_to_norm((w - 1) / 2, w) == 0.0, "image centre must be 0"
    assert pixel_to_norm(0, w) == pytest.approx(1 / w - 1), "first pixel centre"
    assert norm_to_pixel(1 - 1 / w, w) == pytest.approx(w - 1), "last pixel centre"


def test_norm_round_trip_numpy_and_torch():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-5, 140, size=(4, 17, 2))
    uv = pixel_to_norm_xy(xy, 96, 128)
    assert np.allclose(uv[..., 0], (2 * xy[..., 0] + 1) / 96 - 1), "x uses the width"
    assert np.allclose(uv[..., 1], (2 * xy[..., 1] + 1) / 128 - 1), "y uses the height"
    assert np.allclose(norm_to_pixel_xy(uv, 96, 128), xy, atol=1e-9), "numpy round trip"
    t = torch.from_numpy(xy).float()
    back = norm_to_pixel_xy(pixel_to_norm_xy(t, 96, 128), 96, 128)
    assert torch.allclose(back, t, atol=1e-4), "torch round trip"
    before = xy.copy()
    pixel_to_norm_xy(xy, 96, 128)
    assert np.array_equal(xy, before), "the converters must not modify their input"


def test_heatmap_input_round_trip():
    # Stride 4: heatmap pixel 0 covers input pixels 0..3, whose centre is 1.5.
    hm = np.array([[0.0, 0.0], [15.0, 7.0]])
    inp = heatmap_to_input(hm, 4, 4)
    assert np.allclose(inp[0], [1.5, 1.5]), f"heatmap pixel 0 -> {inp[0]}, expected 1.5"
    assert np.allclose(inp[1], [61.5, 29.5]), f"heatmap pixel (15, 7) -> {inp[1]}"
    assert np.allclose(input_to_heatmap(inp, 4, 4), hm), "round trip"
    # Same normalised space: a heatmap point and its input point share u.
    assert pixel_to_norm(inp[1, 0], 64) == pytest.approx(pixel_to_norm(hm[1, 0], 16))


# ----------------------------------------------------------------------------- boxes and crops


def test_box_to_center_scale_golden():
    center, size = box_to_center_scale([10, 20, 30, 60], aspect_wh=0.75, padding=1.25)
    assert np.allclose(center, [24.5, 49.5]), f"centre {center}: box edges 10..40, 20..80"
    assert np.allclose(size, [45 * 1.25, 60 * 1.25]), f"width grown to 3:4 aspect, got {size}"
    _, size = box_to_center_scale([0, 0, 100, 20], aspect_wh=1.0, padding=1.0)
    assert np.allclose(size, [100, 100]), "height grown, never shrunk"


def test_crop_affine_maps_box_to_crop():
    out_wh = (48, 64)
    box = [10.0, 20.0, 30.0, 40.0]  # edges x 10..40, y 20..60; aspect 3:4 = 48:64
    center, size = box_to_center_scale(box, 48 / 64, padding=1.0)
    m = crop_affine(center, size, out_wh)
    got = apply_affine(center, m)
    assert np.allclose(got, [23.5, 31.5]), f"box centre -> {got}, expected the crop centre"
    # Box edges (pixel edges, our convention: COCO edge x -> x - 0.5) -> crop edges.
    corners = np.array([[10 - 0.5, 20 - 0.5], [40 - 0.5, 60 - 0.5]])
    got = apply_affine(corners, m)
    assert np.allclose(got, [[-0.5, -0.5], [47.5, 63.5]]), f"box edges -> {got}"


def test_crop_affine_rotation_is_counter_clockwise():
    m = crop_affine((50.0, 50.0), (20.0, 20.0), (20, 20), rotation_deg=90.0)
    # A point right of the centre ends up above the crop centre (CCW on screen, y down).
    got = apply_affine([55.0, 50.0], m)
    assert np.allclose(got, [9.5, 4.5]), f"got {got}"


def test_invert_compose_flip():
    rng = np.random.default_rng(1)
    m = crop_affine(rng.uniform(0, 100, 2), rng.uniform(20, 80, 2), (96, 128), 33.0)
    inv = invert_affine(m)
    eye = compose_affine(inv, m)
    assert np.allclose(eye, [[1, 0, 0], [0, 1, 0]], atol=1e-12), f"inv @ m = {eye}"
    pts = rng.uniform(-10, 200, size=(50, 2))
    back = apply_affine(apply_affine(pts, m), inv)
    assert np.allclose(back, pts, atol=1e-9), "points -> crop -> back must round-trip"
    shift = np.array([[1.0, 0, 5.0], [0, 1.0, 0]])
    scale = np.array([[2.0, 0, 0], [0, 2.0, 0]])
    # Scale first, then shift: x -> 2x + 5 (not 2(x + 5)).
    assert np.allclose(apply_affine([1.0, 1.0], compose_affine(shift, scale)), [7.0, 2.0])
    f = flip_affine(96)
    assert np.allclose(apply_affine([0.0, 3.0], f), [95.0, 3.0]), "first pixel -> last"
    assert np.allclose(compose_affine(f, f), [[1, 0, 0], [0, 1, 0]]), "flip twice = identity"


@pytest.mark.parametrize("rotation, flip", [(0.0, False), (0.0, True), (30.0, False)])
def test_crop_affine_agrees_with_warp_affine(rotation, flip):
    """Warp an image with one bright pixel; it must land where apply_affine says."""
    img = np.zeros((60, 80), np.uint8)
    src = np.array([37.0, 22.0])
    img[int(src[1]), int(src[0])] = 255
    out_wh = (96, 96)
    m = crop_affine((40.0, 25.0), (24.0, 24.0), out_wh, rotation)  # 4x upscale
    if flip:
        m = compose_affine(flip_affine(out_wh[0]), m)
    warped = cv2.warpAffine(img.astype(np.float32), m, out_wh, flags=cv2.INTER_LINEAR)
    expected = apply_affine(src, m)
    got = centroid(warped)
    tol = 0.02 if rotation == 0 else 0.1
    assert np.abs(got - expected).max() < tol, f"pixel landed at {got}, coords says {expected}"
    # And back: the inverse matrix maps the landing point to the source pixel.
    assert np.allclose(apply_affine(got, invert_affine(m)), src, atol=tol), "inverse"

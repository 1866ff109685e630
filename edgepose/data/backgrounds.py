"""Textured backgrounds and occluding objects for synthetic images (BGR uint8)."""

from __future__ import annotations

import math

import cv2
import numpy as np

KINDS = ("noise", "gradient", "stripes", "shapes")


def _color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


def smooth_noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Blobby colour noise: a coarse random grid upsampled bicubically. (H, W, 3) float."""
    cells = int(rng.integers(3, 12))
    grid = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _blend(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """(H, W) weights in [0, 1] -> (H, W, 3) float32 mix of two colours."""
    c0 = c0.astype(np.float32)
    return c0 + t[..., None] * (c1.astype(np.float32) - c0)


def _ramp(width: int, height: int, angle: float) -> np.ndarray:
    """(H, W) float32 x cos(angle) + y sin(angle), built by broadcasting (cheap)."""
    xs = np.arange(width, dtype=np.float32)[None, :] * np.float32(math.cos(angle))
    ys = np.arange(height, dtype=np.float32)[:, None] * np.float32(math.sin(angle))
    return xs + ys


def gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Linear gradient between two random colours in a random direction. (H, W, 3) float."""
    t = _ramp(width, height, rng.uniform(0, 2 * math.pi))
    t -= t.min()
    t /= max(float(t.max()), 1e-6)
    return _blend(t, _color(rng), _color(rng))


def stripes(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sinusoidal stripes of random period, direction and colours. (H, W, 3) float."""
    a = rng.uniform(0, math.pi)
    period = rng.uniform(6, 40) * max(width, height) / 192.0
    t = 0.5 + 0.5 * np.sin(_ramp(width, height, a) * np.float32(2 * math.pi / period))
    return _blend(t, _color(rng), _color(rng))


def shapes(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Random rectangles, circles and lines on a flat colour. (H, W, 3) float."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = _color(rng).astype(np.uint8)
    s = max(width, height)
    for _ in range(int(rng.integers(4, 14))):
        c = tuple(int(v) for v in _color(rng))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = rng.integers(0, 3)
        if kind == 0:
            w, h = rng.integers(s // 20 + 1, s // 3 + 2, size=2)
            cv2.rectangle(img, (x, y), (x + int(w), y + int(h)), c, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), int(rng.integers(s // 30 + 1, s // 5 + 2)), c, -1,
                       cv2.LINE_AA)
        else:
            x2, y2 = int(rng.integers(0, width)), int(rng.integers(0, height))
            cv2.line(img, (x, y), (x2, y2), c, int(rng.integers(1, s // 40 + 3)), cv2.LINE_AA)
    return img.astype(np.float32)


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR background: one texture kind, mixed with fine pixel noise."""
    kind = KINDS[int(rng.integers(0, len(KINDS)))]
    base = {"noise": smooth_noise, "gradient": gradient, "stripes": stripes,
            "shapes": shapes}[kind](rng, width, height)
    if rng.random() < 0.5:  # blend in a second texture for variety
        other = KINDS[int(rng.integers(0, len(KINDS)))]
        extra = {"noise": smooth_noise, "gradient": gradient, "stripes": stripes,
                 "shapes": shapes}[other](rng, width, height)
        base = cv2.addWeighted(base, 0.6, extra, 0.4, 0.0)
    sigma = rng.uniform(0, 12)
    if sigma > 1:
        noise = rng.standard_normal(size=(height, width, 1), dtype=np.float32)
        base = base + noise * np.float32(sigma)
    return np.clip(base, 0, 255).astype(np.uint8)


def draw_occluder(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                  near_xy, size_px: float, value: int = 255) -> None:
    """Draw a random solid object (box, ellipse or triangle) around ``near_xy`` into the
    image and paint its area with ``value`` into the (H, W) uint8 label ``mask``."""
    cx, cy = (float(v) + rng.normal(0, 0.3 * size_px) for v in near_xy)
    c = tuple(int(v) for v in _color(rng))
    kind = int(rng.integers(0, 3))
    w, h = rng.uniform(0.4, 1.0, size=2) * size_px
    if kind == 0:
        a = math.radians(rng.uniform(0, 180))
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        pts = np.round((corners @ rot.T + [cx, cy]) * 16).astype(np.int32)
    elif kind == 1:
        pts = cv2.ellipse2Poly((int(cx), int(cy)), (max(int(w / 2), 1), max(int(h / 2), 1)),
                               int(rng.uniform(0, 180)), 0, 360, 10) * 16
        pts = pts.astype(np.int32)
    else:
        pts = np.round((rng.uniform(-0.6, 0.6, size=(3, 2)) * size_px + [cx, cy]) * 16)
        pts = pts.astype(np.int32)
    cv2.fillPoly(img, [pts], c, cv2.LINE_AA, 4)
    cv2.fillPoly(mask, [pts], int(value), cv2.LINE_8, 4)

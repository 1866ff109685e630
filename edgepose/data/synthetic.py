"""Synthetic COCO-format keypoint data: articulated figures with exact sub-pixel labels.

``generate_coco_dataset`` writes ``<out>/images/<split>/<id>.jpg`` and
``<out>/annotations/person_keypoints_<split>.json`` exactly as COCO lays them out, so the
same loaders, metrics and training code read it and real COCO. Keypoints are in the
edgepose pixel convention (pixel centres on integers, :mod:`edgepose.coords`) and are the
exact centres of the drawn joints (see :mod:`edgepose.data.figures`).

Everything is deterministic from ``seed``: image ``i`` of split ``s`` is drawn from its own
random generator seeded with (seed, crc32(s), i), so the same seed gives byte-identical
JSON and identical images, whatever the number of images asked for.

:class:`DemoScene` renders one figure moving smoothly over time, for the live demo.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgepose.data import backgrounds
from edgepose.data.figures import (
    L_EAR, R_EAR, Appearance, Geometry, FigureAngles, draw_figure, draw_silhouette, figure_prims,
    pose_geometry, prims_extent,
)
from edgepose.errors import DataError
from edgepose.skeleton import COCO

POSE_KINDS = ("stand", "walk", "arms_up", "wave", "tpose", "crouch", "reach", "random")
POSE_PROBS = (0.18, 0.17, 0.12, 0.12, 0.08, 0.12, 0.11, 0.10)
STANDING_HEIGHT_T = 3.6  # head top to feet of a standing figure, in torso lengths


@dataclass
class SynthConfig:
    """How synthetic images are composed. ``image_size`` is (W, H) in pixels."""

    image_size: tuple[int, int] = (192, 192)
    max_people: int = 3
    multi_person_prob: float = 0.15
    occluder_prob: float = 0.3
    lying_prob: float = 0.08
    cut_off_prob: float = 0.08  # figure partly outside the image
    height_frac: tuple[float, float] = (0.55, 0.92)  # single person: extent / image height
    blur_prob: float = 0.25
    # Left limbs are drawn lighter and right ones darker by a relative amount in this range
    # ((0, 0) = no difference). Note: a horizontally flipped training crop shows the darker
    # limbs on the labelled-left side, so with flip augmentation a model cannot rely on it.
    side_shade: tuple[float, float] = (0.22, 0.35)
    jpeg_quality: int = 95


# ----------------------------------------------------------------------------- sampling


def sample_pose(rng: np.random.Generator, kind: str | None = None,
                lying_prob: float = 0.0) -> FigureAngles:
    """A random plausible pose of one of :data:`POSE_KINDS` (angles in degrees)."""
    if kind is None:
        kind = POSE_KINDS[int(rng.choice(len(POSE_KINDS), p=POSE_PROBS))]
    u = rng.uniform
    sh = [u(5, 25), u(5, 25)]
    el = [u(0, 35), u(0, 35)]
    hp = [u(0, 12), u(0, 12)]
    kn = [u(0, 15), u(0, 15)]
    width = 1.0 if rng.random() < 0.6 else u(0.45, 1.0)
    if kind == "walk":
        hp = [u(10, 35), u(10, 35)]
        kn = [u(5, 50), u(5, 50)]
        sh = [u(5, 40), u(5, 40)]
        width = u(0.4, 0.8)
    elif kind == "arms_up":
        sh = [u(130, 180), u(130, 180)]
        el = [u(0, 50), u(0, 50)]
    elif kind == "wave":
        i = int(rng.integers(0, 2))
        sh[i] = u(80, 160)
        el[i] = u(40, 130)
    elif kind == "tpose":
        sh = [u(70, 110), u(70, 110)]
        el = [u(0, 25), u(0, 25)]
    elif kind == "crouch":
        hp = [u(35, 85), u(35, 85)]
        kn = [u(70, 140), u(70, 140)]
        sh = [u(10, 70), u(10, 70)]
        el = [u(20, 120), u(20, 120)]
    elif kind == "reach":
        sh = [u(30, 150), u(-20, 60)]
        el = [u(0, 90), u(0, 140)]
        if rng.random() < 0.5:
            sh, el = sh[::-1], el[::-1]
    elif kind == "random":
        sh = list(u(-20, 180, size=2))
        el = list(u(0, 150, size=2))
        hp = list(u(-15, 90, size=2))
        kn = list(u(0, 140, size=2))
    torso = rng.normal(0, 7)
    if rng.random() < lying_prob:
        torso += float(rng.choice([-1, 1])) * u(60, 110)
    lengths = np.where(rng.random(8) < 0.3, u(0.7, 1.0, size=8), 1.0)
    return FigureAngles(
        torso=float(torso), head_tilt=float(rng.normal(0, 10)),
        head_yaw=float(u(-0.7, 0.7)) if rng.random() < 0.7 else 0.0, width=float(width),
        shoulder=(float(sh[0]), float(sh[1])), elbow=(float(el[0]), float(el[1])),
        hip=(float(hp[0]), float(hp[1])), knee=(float(kn[0]), float(kn[1])),
        lengths=tuple(float(v) for v in lengths),
    ).clipped()


def sample_appearance(rng: np.random.Generator,
                      side_shade: tuple[float, float] = (0.22, 0.35)) -> Appearance:
    """Random skin / clothing / hair colours (BGR); left/right shade difference in range."""
    skin_tone = rng.uniform(0.25, 1.0)
    skin = tuple(int(v) for v in np.array([90, 130, 180]) * skin_tone + [30, 30, 40])

    def col():
        return tuple(int(v) for v in rng.uniform(20, 235, size=3))

    hair = tuple(int(v) for v in rng.uniform(10, 90) * np.array([1.0, 1.1, 1.3]))
    return Appearance(skin=skin, shirt=col(), trousers=col(), hair=hair,
                      side_shade=float(rng.uniform(*side_shade)))


# ----------------------------------------------------------------------------- one figure


@dataclass
class SynthPerson:
    """One rendered figure: (17, 2) keypoints px, (17,) visibility 0/1/2, COCO box, area."""

    keypoints: np.ndarray
    visibility: np.ndarray
    bbox: list[float]
    area: float


def place_figure(pose: FigureAngles, height_px: float, center_xy, max_w: float | None = None):
    """Scale a pose so its extent is ``height_px`` tall (and at most ``max_w`` wide) with
    its extent centred on ``center_xy``. Returns (Geometry, prims, unit T in px)."""
    app = Appearance()
    g0 = pose_geometry(pose, (0.0, 0.0), 1.0)
    ext = prims_extent(figure_prims(g0, app))
    ext_w, ext_h = ext[2] - ext[0], ext[3] - ext[1]
    unit = height_px / max(ext_h, 1e-6)
    if max_w is not None and ext_w * unit > max_w:
        unit = max_w / ext_w
    mid = np.array([(ext[0] + ext[2]) / 2, (ext[1] + ext[3]) / 2]) * unit
    pelvis = np.asarray(center_xy, dtype=np.float64) - mid
    return pose_geometry(pose, pelvis, unit), unit


def coco_box(extent, width: int, height: int) -> list[float]:
    """Continuous extent [x0, y0, x1, y1] (our px) -> COCO [x, y, w, h] (edges), clipped."""
    x0 = min(max(extent[0] + 0.5, 0.0), width)
    y0 = min(max(extent[1] + 0.5, 0.0), height)
    x1 = min(max(extent[2] + 0.5, 0.0), width)
    y1 = min(max(extent[3] + 0.5, 0.0), height)
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]


def visibility(g: Geometry, label: np.ndarray, own: int) -> np.ndarray:
    """(17,) COCO visibility: 0 outside the image, 1 hidden (under another person, an
    occluder, or an ear behind the head), 2 visible."""
    h, w = label.shape
    v = np.full(17, 2, dtype=np.int64)
    for j, (x, y) in enumerate(g.keypoints):
        if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
            v[j] = 0
            continue
        owner = label[int(round(y)), int(round(x))]
        if owner != own and owner != 0:
            v[j] = 1
    for j, hidden in ((L_EAR, g.ear_hidden[0]), (R_EAR, g.ear_hidden[1])):
        if hidden and v[j] == 2:
            v[j] = 1
    return v


# ----------------------------------------------------------------------------- scenes


def render_scene(rng: np.random.Generator, cfg: SynthConfig) -> tuple[np.ndarray, list[SynthPerson]]:
    """One synthetic image (H, W, 3) BGR uint8 and its people."""
    w, h = cfg.image_size
    img = backgrounds.random_background(rng, w, h)
    label = np.zeros((h, w), np.uint8)
    n = 1
    if cfg.max_people > 1 and rng.random() < cfg.multi_person_prob:
        n = int(rng.integers(2, cfg.max_people + 1))
    figures = []
    for i in range(n):
        pose = sample_pose(rng, lying_prob=cfg.lying_prob)
        lo, hi = cfg.height_frac
        if n > 1:
            lo, hi = lo * 0.6, hi * 0.75
        frac = rng.uniform(lo, hi)
        if n == 1:
            cx = w / 2 + rng.normal(0, 0.06) * w
            cy = h / 2 + rng.normal(0, 0.04) * h
        else:
            cx = (i + 0.5) / n * w + rng.normal(0, 0.08) * w
            cy = h / 2 + rng.normal(0, 0.1) * h
        if rng.random() < cfg.cut_off_prob:
            cx += float(rng.choice([-1, 1])) * rng.uniform(0.2, 0.45) * w
            cy += rng.uniform(-0.3, 0.3) * h
        g, unit = place_figure(pose, frac * h, (cx, cy), max_w=0.95 * w)
        prims = figure_prims(g, sample_appearance(rng, cfg.side_shade))
        draw_figure(img, prims)
        draw_silhouette(label, prims, i + 1)
        figures.append((g, prims, unit))
    for g, _, unit in figures:
        if rng.random() < cfg.occluder_prob:
            j = int(rng.integers(0, 17))
            backgrounds.draw_occluder(img, label, rng, g.keypoints[j], rng.uniform(0.6, 1.4) * unit)
    if rng.random() < cfg.blur_prob:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.0))
    people = []
    for i, (g, prims, _) in enumerate(figures):
        v = visibility(g, label, i + 1)
        kp = np.where(v[:, None] > 0, g.keypoints, 0.0)
        box = coco_box(prims_extent(prims), w, h)
        if box[2] <= 0 or box[3] <= 0:
            continue  # entirely outside the image: not annotated
        area = max(float(np.count_nonzero(label == i + 1)), 1.0)
        people.append(SynthPerson(kp, v, box, area))
    return img, people


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of image ``index`` of ``split`` (independent of dataset size)."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])


def coco_categories() -> list[dict]:
    """The standard COCO person category with 17 keypoint names and the 1-based skeleton."""
    from edgepose.skeleton import coco_person_category

    return [coco_person_category(COCO)]


def _num(v: float) -> float | int:
    """JSON-friendly number: ints stay ints, floats lose numpy types."""
    f = float(v)
    return int(f) if f.is_integer() else f


def generate_coco_dataset(
    out_dir, num_images: int, seed: int = 0, image_size: tuple[int, int] = (192, 192),
    split: str = "train", config: SynthConfig | None = None, progress: bool = True,
) -> Path:
    """Write ``num_images`` synthetic images + COCO keypoint JSON; return the JSON path.

    Layout: ``out_dir/images/<split>/<image_id:06d>.jpg`` and
    ``out_dir/annotations/person_keypoints_<split>.json``. ``image_size`` is (W, H).
    """
    from tqdm import tqdm

    cfg = config or SynthConfig()
    cfg = SynthConfig(**{**cfg.__dict__, "image_size": (int(image_size[0]), int(image_size[1]))})
    if num_images < 0 or min(cfg.image_size) < 16:
        raise DataError(f"need num_images >= 0 and an image of at least 16x16 px, got "
                        f"{num_images} images of {cfg.image_size}")
    out = Path(out_dir)
    img_dir = out / "images" / split
    ann_dir = out / "annotations"
    try:
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{out}: cannot create the dataset folders ({e.strerror})") from None
    images, annotations = [], []
    ann_id = 1
    bar = tqdm(range(num_images), desc=f"synth {split}", unit="img", disable=not progress)
    for i in bar:
        image_id = i + 1
        img, people = render_scene(image_rng(seed, split, i), cfg)
        name = f"{image_id:06d}.jpg"
        if not cv2.imwrite(str(img_dir / name), img,
                           [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg_quality)]):
            raise DataError(f"{img_dir / name}: cannot write the image; check the folder")
        images.append({"id": image_id, "file_name": name, "width": cfg.image_size[0],
                       "height": cfg.image_size[1]})
        for p in people:
            kps = []
            for (x, y), v in zip(p.keypoints, p.visibility):
                kps += [_num(x), _num(y), int(v)]
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "keypoints": kps, "num_keypoints": int(np.count_nonzero(p.visibility)),
                "bbox": [_num(b) for b in p.bbox], "area": _num(round(p.area, 2)),
            })
            ann_id += 1
    dataset = {
        "info": {"description": f"edgepose synthetic figures ({split}, seed {seed})",
                 "version": "1.0", "keypoint_convention": "pixel centres on integers"},
        "licenses": [],
        "images": images, "annotations": annotations, "categories": coco_categories(),
    }
    json_path = ann_dir / f"person_keypoints_{split}.json"
    json_path.write_text(json.dumps(dataset))
    return json_path


# ----------------------------------------------------------------------------- demo scene


class DemoScene:
    """One figure moving smoothly (walking in place, waving, crouching, drifting) over a
    static textured background, for the live demo source and for end-to-end checks.

    ``frame(t)`` -> (image (H, W, 3) BGR uint8, keypoints (17, 2) float px, visibility (17,)
    int (0 outside, 1 hidden, 2 visible), bbox [x, y, w, h] COCO px).
    """

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0):
        rng = np.random.default_rng([int(seed), 0xDE30])
        self.width, self.height = int(width), int(height)
        self.background = backgrounds.random_background(rng, self.width, self.height)
        self.appearance = sample_appearance(rng)
        self.phase = rng.uniform(0, 2 * math.pi, size=6)
        self.speed = rng.uniform(0.8, 1.2)

    def pose_at(self, t: float) -> tuple[FigureAngles, float, np.ndarray]:
        """FigureAngles, figure height (px) and extent centre (px) at time ``t`` seconds."""
        ph, s = self.phase, self.speed
        walk = math.sin(2 * math.pi * 0.8 * s * t)
        crouch = max(0.0, math.sin(2 * math.pi * 0.05 * t + ph[0])) ** 4
        wave = 0.5 + 0.5 * math.sin(2 * math.pi * 0.07 * t + ph[1])
        pose = FigureAngles(
            torso=5.0 * math.sin(2 * math.pi * 0.11 * t + ph[2]),
            head_tilt=8.0 * math.sin(2 * math.pi * 0.17 * t),
            head_yaw=0.5 * math.sin(2 * math.pi * 0.09 * t + ph[3]),
            width=0.85 + 0.15 * math.cos(2 * math.pi * 0.06 * t),
            shoulder=(25 + 120 * wave + 10 * walk, 20 - 15 * walk),
            elbow=(20 + wave * (60 + 40 * math.sin(2 * math.pi * 1.5 * t)), 25 + 10 * walk),
            hip=(12 + 10 * walk + 55 * crouch, 12 - 10 * walk + 55 * crouch),
            knee=(12 + 12 * max(walk, 0) + 100 * crouch, 12 + 12 * max(-walk, 0) + 100 * crouch),
        ).clipped()
        h = self.height * (0.7 + 0.12 * math.sin(2 * math.pi * 0.04 * t + ph[4]))
        cx = self.width * (0.5 + 0.22 * math.sin(2 * math.pi * 0.03 * t + ph[5]))
        cy = self.height * 0.5
        return pose, h, np.array([cx, cy])

    def frame(self, t: float):
        pose, h, center = self.pose_at(t)
        g, _ = place_figure(pose, h, center, max_w=0.95 * self.width)
        prims = figure_prims(g, self.appearance)
        img = self.background.copy()
        draw_figure(img, prims)
        w, hh = self.width, self.height
        x, y = g.keypoints[:, 0], g.keypoints[:, 1]
        inside = (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < hh - 0.5)
        vis = np.where(inside, 2, 0)
        for j, hidden in ((L_EAR, g.ear_hidden[0]), (R_EAR, g.ear_hidden[1])):
            if hidden and vis[j] == 2:
                vis[j] = 1
        box = np.array(coco_box(prims_extent(prims), w, hh), dtype=np.float32)
        return img, g.keypoints.astype(np.float32), vis.astype(np.int64), box

"""Articulated 2D human figures: pose angles -> joint positions -> drawing primitives.

Geometry is expressed in image pixels in the edgepose convention (pixel centres on
integers, see :mod:`edgepose.coords`). OpenCV's drawing functions use the same convention,
and with ``shift`` fractional bits they take sub-pixel points, so every joint is placed on
the 1/16 px drawing grid first (:func:`quantize`) and the keypoint written to the
annotation is *exactly* the centre of the disc / capsule end drawn there.

Body frame of a figure (torso angle ``a`` in degrees, positive tilts the head to the right
on screen)::

        up   = ( sin a, -cos a)        the pelvis -> neck direction
        left = ( cos a,  sin a)        the person's LEFT; a person facing the camera has
                                       their left side on the image's right (COCO)

A limb segment on side ``s`` (+1 left, -1 right) at angle ``t`` (degrees, 0 = hanging
down, 90 = straight out sideways, 180 = straight up) points along
``cos t * down + sin t * s * left``. Elbows and knees bend one way only: towards the
body's midline (``forearm angle = upper-arm angle - flex``), with flex in [0, 150] deg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

SHIFT = 4  # fractional bits for cv2 drawing: 1/16 px
ONE = 1 << SHIFT

# COCO-17 joint indices (edgepose.skeleton.COCO_JOINTS order).
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = 11, 12, 13, 14, 15, 16

# Angle limits (degrees), per joint: (min, max).
LIMITS = {
    "shoulder": (-25.0, 185.0),
    "elbow": (0.0, 150.0),
    "hip": (-20.0, 95.0),
    "knee": (0.0, 145.0),
    "head_tilt": (-35.0, 35.0),
    "head_yaw": (-0.75, 0.75),  # radians
}

# Body proportions in units of the torso length T (neck to pelvis).
PROPORTIONS = {
    "shoulder_half": 0.40, "hip_half": 0.19, "neck": 0.12, "head_r": 0.27,
    "upper_arm": 0.62, "forearm": 0.55, "thigh": 0.88, "shin": 0.85, "foot": 0.2,
}


@dataclass
class FigureAngles:
    """Joint angles of one figure. Pairs are (left, right); angles in degrees.

    ``lengths`` scales the 8 limb segments (L/R upper arm, forearm, thigh, shin) to mimic
    foreshortening; ``width`` in (0, 1] narrows shoulders/hips for a turned body.
    """

    torso: float = 0.0
    head_tilt: float = 0.0
    head_yaw: float = 0.0
    width: float = 1.0
    shoulder: tuple[float, float] = (12.0, 12.0)
    elbow: tuple[float, float] = (10.0, 10.0)
    hip: tuple[float, float] = (6.0, 6.0)
    knee: tuple[float, float] = (5.0, 5.0)
    lengths: tuple[float, ...] = (1.0,) * 8

    def clipped(self) -> "FigureAngles":
        """Copy with every angle inside :data:`LIMITS`."""

        def c(v, name):
            lo, hi = LIMITS[name]
            return float(min(max(v, lo), hi))

        return FigureAngles(
            torso=float(self.torso),
            head_tilt=c(self.head_tilt, "head_tilt"),
            head_yaw=c(self.head_yaw, "head_yaw"),
            width=float(min(max(self.width, 0.3), 1.0)),
            shoulder=tuple(c(v, "shoulder") for v in self.shoulder),
            elbow=tuple(c(v, "elbow") for v in self.elbow),
            hip=tuple(c(v, "hip") for v in self.hip),
            knee=tuple(c(v, "knee") for v in self.knee),
            lengths=tuple(float(v) for v in self.lengths),
        )


@dataclass
class Appearance:
    """Colours (BGR 0..255) of one figure. Left limbs are drawn lighter, right darker."""

    skin: tuple[int, int, int] = (120, 160, 210)
    shirt: tuple[int, int, int] = (60, 60, 200)
    trousers: tuple[int, int, int] = (120, 70, 40)
    hair: tuple[int, int, int] = (30, 30, 40)
    side_shade: float = 0.28  # relative lightness difference between left and right


@dataclass
class Geometry:
    """Joint positions (17, 2) px on the drawing grid plus the helper points (px) and the
    body / head frame unit vectors; ``feet`` (2, 2) are the left and right toe points."""

    keypoints: np.ndarray
    neck: np.ndarray
    pelvis: np.ndarray
    head: np.ndarray
    head_r: float
    unit: float  # torso length T in px
    up: np.ndarray
    left: np.ndarray
    head_up: np.ndarray
    head_left: np.ndarray
    ear_hidden: tuple[bool, bool] = (False, False)
    feet: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))


def quantize(p) -> np.ndarray:
    """Snap point(s) to the 1/(2**SHIFT) px drawing grid."""
    return np.round(np.asarray(p, dtype=np.float64) * ONE) / ONE


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    # Clockwise on screen for positive deg (image y points down).
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _seg(angle_deg: float, side: int, down: np.ndarray, left: np.ndarray) -> np.ndarray:
    a = math.radians(angle_deg)
    return math.cos(a) * down + math.sin(a) * side * left


def pose_geometry(pose: FigureAngles, pelvis_xy, unit: float) -> Geometry:
    """Figure angles + pelvis position (px) + torso length ``unit`` (px) -> joint positions."""
    pose = pose.clipped()
    P = PROPORTIONS
    a = math.radians(pose.torso)
    up = np.array([math.sin(a), -math.cos(a)])
    left = np.array([math.cos(a), math.sin(a)])
    down = -up
    T = float(unit)
    L = pose.lengths
    kp = np.zeros((17, 2))
    feet = np.zeros((2, 2))
    pelvis = quantize(pelvis_xy)
    neck = quantize(pelvis + T * up)
    for i, s in enumerate((1, -1)):  # 0 = left, 1 = right
        sho = quantize(neck - 0.06 * T * up + s * P["shoulder_half"] * pose.width * T * left)
        elb = quantize(sho + L[i] * P["upper_arm"] * T * _seg(pose.shoulder[i], s, down, left))
        wri = quantize(elb + L[2 + i] * P["forearm"] * T
                       * _seg(pose.shoulder[i] - pose.elbow[i], s, down, left))
        hip = quantize(pelvis - 0.03 * T * up + s * P["hip_half"] * pose.width * T * left)
        kne = quantize(hip + L[4 + i] * P["thigh"] * T * _seg(pose.hip[i], s, down, left))
        shin_angle = pose.hip[i] - pose.knee[i]
        ank = quantize(kne + L[6 + i] * P["shin"] * T * _seg(shin_angle, s, down, left))
        kp[(L_SHO, R_SHO)[i]] = sho
        kp[(L_ELB, R_ELB)[i]] = elb
        kp[(L_WRI, R_WRI)[i]] = wri
        kp[(L_HIP, R_HIP)[i]] = hip
        kp[(L_KNE, R_KNE)[i]] = kne
        kp[(L_ANK, R_ANK)[i]] = ank
        foot_dir = _seg(shin_angle + 65.0, s, down, left)
        feet[i] = quantize(ank + P["foot"] * T * foot_dir)
    # Head: its own frame, tilted relative to the torso.
    head_up = _rot(up, pose.head_tilt)
    head_left = _rot(left, pose.head_tilt)
    r = P["head_r"] * T
    head = quantize(neck + (P["neck"] * T + r) * head_up)
    yaw = pose.head_yaw

    def face_point(alpha: float, rho: float, lift: float) -> np.ndarray:
        # A point on a sphere at longitude alpha (+ = towards the person's left), seen
        # from the front with the head turned by yaw.
        return quantize(head + rho * r * math.sin(alpha + yaw) * head_left + lift * r * head_up)

    kp[NOSE] = face_point(0.0, 1.0, -0.3)
    kp[L_EYE] = face_point(0.5, 0.9, 0.0)
    kp[R_EYE] = face_point(-0.5, 0.9, 0.0)
    kp[L_EAR] = face_point(math.pi / 2, 1.0, 0.02)
    kp[R_EAR] = face_point(-math.pi / 2, 1.0, 0.02)
    ear_hidden = (math.cos(math.pi / 2 + yaw) < -0.2, math.cos(-math.pi / 2 + yaw) < -0.2)
    return Geometry(kp, neck, pelvis, head, r, T, up, left, head_up, head_left,
                    ear_hidden, feet)


# ----------------------------------------------------------------------------- primitives


@dataclass
class Prim:
    """One drawing primitive. kind: 'disc' (p, r0), 'capsule' (p -> q, radii r0 -> r1),
    'poly' (pts), 'ellipse' (p, axes (r0, r1), angle deg)."""

    kind: str
    color: tuple[int, int, int]
    p: np.ndarray
    q: np.ndarray | None = None
    r0: float = 0.0
    r1: float = 0.0
    angle: float = 0.0
    pts: np.ndarray | None = None
    part: str = ""


def shade(color, k: float) -> tuple[int, int, int]:
    """Lighten (k > 0) or darken (k < 0) a BGR colour by a relative amount."""
    c = np.asarray(color, dtype=np.float64)
    c = c + (255.0 - c) * k if k > 0 else c * (1.0 + k)
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))


def figure_prims(g: Geometry, app: Appearance) -> list[Prim]:
    """The figure as drawing primitives, back to front: neck, torso, legs (with feet), arms
    (with hands), ears, head, hair, eyes, nose. Left limbs lighter, right ones darker."""
    T, kp = g.unit, g.keypoints
    k = app.side_shade
    prims: list[Prim] = []
    # Torso polygon: shoulders (widened by the sleeve) down to hips (widened by the thigh).
    out = 0.09 * T
    torso = np.stack([
        kp[L_SHO] + out * g.left + 0.06 * T * g.up,
        kp[R_SHO] - out * g.left + 0.06 * T * g.up,
        kp[R_HIP] - 0.1 * T * g.left,
        kp[L_HIP] + 0.1 * T * g.left,
    ])
    prims.append(Prim("capsule", app.skin, g.neck, g.head, r0=0.1 * T, r1=0.1 * T, part="neck"))
    prims.append(Prim("poly", app.shirt, kp[L_SHO], pts=torso, part="torso"))
    for side, sgn in (("left", 1), ("right", -1)):
        kk = k if sgn > 0 else -k
        hip, kne, ank = (kp[L_HIP], kp[L_KNE], kp[L_ANK]) if sgn > 0 else (
            kp[R_HIP], kp[R_KNE], kp[R_ANK])
        foot = g.feet[0 if sgn > 0 else 1]
        trou = shade(app.trousers, kk)
        prims.append(Prim("capsule", shade((40, 40, 40), kk), ank, foot, 0.06 * T, 0.05 * T,
                          part=f"{side}_foot"))
        prims.append(Prim("capsule", trou, hip, kne, 0.12 * T, 0.09 * T, part=f"{side}_thigh"))
        prims.append(Prim("capsule", trou, kne, ank, 0.09 * T, 0.065 * T, part=f"{side}_shin"))
    for side, sgn in (("left", 1), ("right", -1)):
        kk = k if sgn > 0 else -k
        sho, elb, wri = (kp[L_SHO], kp[L_ELB], kp[L_WRI]) if sgn > 0 else (
            kp[R_SHO], kp[R_ELB], kp[R_WRI])
        sleeve = shade(app.shirt, kk)
        prims.append(Prim("capsule", sleeve, sho, elb, 0.085 * T, 0.07 * T,
                          part=f"{side}_upper_arm"))
        prims.append(Prim("capsule", shade(app.skin, kk * 0.5), elb, wri, 0.065 * T, 0.05 * T,
                          part=f"{side}_forearm"))
        prims.append(Prim("disc", shade(app.skin, kk * 0.5), wri, r0=0.075 * T,
                          part=f"{side}_hand"))
    r = g.head_r
    head_angle = math.degrees(math.atan2(g.head_left[1], g.head_left[0]))
    for i, side in ((L_EAR, "left"), (R_EAR, "right")):
        hidden = g.ear_hidden[0 if i == L_EAR else 1]
        if not hidden:
            prims.append(Prim("ellipse", shade(app.skin, -0.15), kp[i], r0=0.16 * r,
                              r1=0.26 * r, angle=head_angle, part=f"{side}_ear"))
    prims.append(Prim("disc", app.skin, g.head, r0=r, part="head"))
    # Hair: a cap on the top of the head, ending above the eyes (which sit at mid-height).
    prims.append(Prim("ellipse", app.hair, g.head + 0.6 * r * g.head_up, r0=0.95 * r,
                      r1=0.42 * r, angle=head_angle, part="hair"))
    for i, side in ((L_EYE, "left"), (R_EYE, "right")):
        prims.append(Prim("disc", (25, 25, 25), kp[i], r0=max(0.11 * r, 0.5),
                          part=f"{side}_eye"))
    prims.append(Prim("disc", shade(app.skin, -0.35), kp[NOSE], r0=max(0.12 * r, 0.5),
                      part="nose"))
    return prims


def _fx(p) -> tuple[int, int]:
    return int(round(float(p[0]) * ONE)), int(round(float(p[1]) * ONE))


def _fr(r: float) -> int:
    return max(int(round(r * ONE)), 1)


def capsule_polygon(p, q, r0: float, r1: float) -> np.ndarray:
    """(4, 2) quad joining the discs (p, r0) and (q, r1) along the p->q axis."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    d = q - p
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)
    return np.stack([p + r0 * n, q + r1 * n, q - r1 * n, p - r0 * n])


def draw_prim(img: np.ndarray, pr: Prim, color=None, line_type: int = cv2.LINE_AA) -> None:
    """Draw one primitive in place (sub-pixel, anti-aliased unless ``line_type`` says)."""
    c = pr.color if color is None else color
    if pr.kind == "disc":
        cv2.circle(img, _fx(pr.p), _fr(pr.r0), c, -1, line_type, SHIFT)
    elif pr.kind == "capsule":
        cv2.circle(img, _fx(pr.p), _fr(pr.r0), c, -1, line_type, SHIFT)
        cv2.circle(img, _fx(pr.q), _fr(pr.r1), c, -1, line_type, SHIFT)
        quad = np.round(capsule_polygon(pr.p, pr.q, pr.r0, pr.r1) * ONE).astype(np.int32)
        cv2.fillConvexPoly(img, quad, c, line_type, SHIFT)
    elif pr.kind == "poly":
        pts = np.round(np.asarray(pr.pts) * ONE).astype(np.int32)
        cv2.fillPoly(img, [pts], c, line_type, SHIFT)
    elif pr.kind == "ellipse":
        cv2.ellipse(img, _fx(pr.p), (_fr(pr.r0), _fr(pr.r1)), pr.angle, 0, 360, c, -1,
                    line_type, SHIFT)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown primitive kind {pr.kind!r}")


def draw_figure(img: np.ndarray, prims: list[Prim]) -> None:
    """Draw a figure's primitives onto a BGR uint8 image in place."""
    for pr in prims:
        draw_prim(img, pr)


def draw_silhouette(mask: np.ndarray, prims: list[Prim], value: int) -> None:
    """Paint the figure's area with ``value`` into a uint8 (H, W) label map (no AA)."""
    for pr in prims:
        draw_prim(mask, pr, color=int(value), line_type=cv2.LINE_8)


def prims_extent(prims: list[Prim]) -> np.ndarray:
    """[x0, y0, x1, y1] extent of all primitives, in px (our convention, continuous)."""
    lo = np.array([np.inf, np.inf])
    hi = -lo
    for pr in prims:
        if pr.kind == "poly":
            pts = np.asarray(pr.pts)
            lo, hi = np.minimum(lo, pts.min(0)), np.maximum(hi, pts.max(0))
            continue
        r = max(pr.r0, pr.r1)
        for pt in (pr.p, pr.q):
            if pt is not None:
                lo, hi = np.minimum(lo, pt - r), np.maximum(hi, pt + r)
    return np.concatenate([lo, hi])

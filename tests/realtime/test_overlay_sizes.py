"""Issue 32: overlays sized to the person, ids drawn, the HUD out of people's way.

Golden pixel checks on a black frame: a joint of a 90-px person is a dot about 3 px wide, of
a 400-px person about 13 px; limbs scale the same way; a track id is drawn at its box; the
HUD moves to a free corner when a person stands in the top-left one.
"""

from __future__ import annotations

import numpy as np

from edgepose.realtime.render import Renderer


def dot_width(height: float) -> int:
    img = np.zeros((600, 600, 3), np.uint8)
    r = Renderer([], )
    r.opts.draw_box = False
    coords = np.array([[300.0, 300.0]])
    r.draw_person(img, coords, np.array([1.0]), np.array([250.0, 300.0 - height / 2, 100.0, height]))
    cols = np.where(img[300].any(axis=1))[0]
    return int(cols.max() - cols.min() + 1)


def limb_width(height: float) -> int:
    img = np.zeros((600, 600, 3), np.uint8)
    r = Renderer([(0, 1)])
    r.opts.draw_box = False
    r.opts.joint_radius = 1
    coords = np.array([[100.0, 300.0], [500.0, 300.0]])
    r.draw_person(img, coords, np.array([1.0, 1.0]),
                  np.array([100.0, 300.0 - height / 2, 400.0, height]))
    rows = np.where(img[:, 300].any(axis=1))[0]
    return int(rows.max() - rows.min() + 1)


def test_joint_dots_and_limbs_scale_with_the_person():
    small, large = dot_width(90), dot_width(400)
    assert 2 <= small <= 5, small
    assert 11 <= large <= 17, large
    assert limb_width(90) <= 3 < limb_width(400), (limb_width(90), limb_width(400))


def test_track_id_is_drawn_at_the_box():
    img = np.zeros((300, 300, 3), np.uint8)
    Renderer([]).draw_person(img, np.zeros((0, 2)), np.zeros(0),
                             np.array([100.0, 100.0, 60.0, 150.0]), track_id=7)
    label = img[80:100, 100:140]
    assert label.any(axis=2).sum() > 20, "no id drawn above the box"
    without = np.zeros_like(img)
    Renderer([]).draw_person(without, np.zeros((0, 2)), np.zeros(0),
                             np.array([100.0, 100.0, 60.0, 150.0]))
    assert not without[80:99, 100:140].any()


def test_hud_leaves_a_person_in_the_top_left_corner_uncovered():
    img = np.zeros((480, 640, 3), np.uint8)
    r = Renderer([])
    person = np.array([10.0, 10.0, 120.0, 300.0])
    x0, y0 = r.draw_hud(img, ["FPS 30.0  people 1", "ms: infer 3.0", "onnxruntime fp32"],
                        avoid=[person])
    assert x0 != 0 or y0 != 0, "the HUD stayed on the person in the top-left corner"
    assert x0 >= 130 or y0 >= 310, (x0, y0)
    assert r.draw_hud(np.zeros_like(img), ["x"], avoid=[]) == (0, 0)

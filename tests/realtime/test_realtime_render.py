"""Renderer: joints drawn where the keypoints are, coloured by confidence, hidden below
the threshold; HUD; video sink errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgepose.errors import EdgeposeError
from edgepose.skeleton import COCO
from edgepose.realtime.render import Renderer, RenderOptions, VideoSink, confidence_color, hud_lines

BG = 40


def _pose():
    rng = np.random.default_rng(3)
    coords = np.stack([rng.uniform(20, 300, 17), rng.uniform(20, 220, 17)], -1)
    scores = rng.uniform(0.5, 1.0, 17)
    return coords, scores


def test_joints_drawn_at_keypoints_with_confidence_colour():
    coords, scores = _pose()
    img = np.full((240, 320, 3), BG, np.uint8)
    Renderer(COCO.limbs, RenderOptions(conf=0.3, draw_box=False)).draw_person(img, coords, scores)
    for j, (x, y) in enumerate(coords):
        px = img[int(round(y)), int(round(x))].astype(int)
        want = np.array(confidence_color(scores[j], 0.3))
        assert np.abs(px - want).max() <= 2, f"joint {j} at ({x:.1f},{y:.1f}): {px} != {want}"


def test_confidence_colours_red_to_green():
    assert confidence_color(1.0, 0.3) == (0, 255, 0)
    assert confidence_color(0.3, 0.3) == (0, 0, 255)
    b, g, r = confidence_color(0.65, 0.3)
    assert b == 0 and abs(g - 128) <= 1 and abs(r - 128) <= 1


def test_joints_below_threshold_hidden_with_their_limbs():
    coords = np.array([[40.0 + 15 * j, 30.0 + 10 * (j % 2)] for j in range(17)])
    scores = np.full(17, 0.9)
    hidden = [0, 5, 9, 16]
    scores[hidden] = 0.1
    img = np.full((120, 320, 3), BG, np.uint8)
    Renderer(COCO.limbs, RenderOptions(conf=0.3, draw_box=False, joint_radius=3)).draw_person(
        img, coords, scores)
    for j in hidden:
        x, y = (int(round(v)) for v in coords[j])
        # joints are 15 px apart, radius 3: a hidden joint's own pixel must be background
        # unless a visible limb happens to cross it, which none of these do
        assert (img[y, x] == BG).all(), f"hidden joint {j} was drawn: {img[y, x]}"
    shown = [j for j in range(17) if j not in hidden]
    for j in shown:
        x, y = (int(round(v)) for v in coords[j])
        assert not (img[y, x] == BG).all(), f"visible joint {j} not drawn"
    empty = np.full((120, 320, 3), BG, np.uint8)
    Renderer(COCO.limbs, RenderOptions(conf=0.3)).draw_person(empty, coords, np.zeros(17))
    assert (empty == BG).all(), "nothing may be drawn when every score is below threshold"


def test_box_and_hud_drawn():
    img = np.full((240, 320, 3), BG, np.uint8)
    r = Renderer(COCO.limbs, RenderOptions(conf=0.3))
    r.draw_person(img, np.full((17, 2), 150.0), np.zeros(17), box=np.array([50, 60, 100, 80]))
    assert (img[60, 100] != BG).any() and (img[139, 100] != BG).any(), "box edges not drawn"
    assert (img[100, 100] == BG).all(), "box interior must stay untouched"
    lines = hud_lines(29.5, {"pre": 1.0, "inf": 5.0}, 3, "onnxruntime-cpu", "fp32", (128, 96), 1)
    assert "FPS  29.5" in lines[0] and "dropped 3" in lines[0] and "96x128" in lines[2]
    r.draw_hud(img, lines)
    assert (img[2:20, 2:60] == 255).any(), "HUD text not drawn"


def test_video_sink_roundtrip_and_error(tmp_path):
    sink = VideoSink(str(tmp_path / "v.mp4"), 15)
    for i in range(7):
        sink.write(np.full((64, 80, 3), i * 30, np.uint8))
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    cap.release()
    bad = VideoSink(str(tmp_path / "no_such_dir" / "v.mp4"), 15)
    with pytest.raises(EdgeposeError, match="no_such_dir"):
        bad.write(np.zeros((64, 80, 3), np.uint8))


def test_display_falls_back_to_headless_with_a_note(capsys):
    from edgepose.realtime.render import Display

    d = Display(True)
    img = np.zeros((48, 64, 3), np.uint8)
    if "GUI:                           NONE" not in cv2.getBuildInformation():
        pytest.skip("this OpenCV has a GUI; the fallback cannot be exercised")
    assert d.show(img) is True and d.enabled is False
    assert "no GUI support" in capsys.readouterr().err
    assert d.show(img) is True, "later frames pass silently"
    d.close()

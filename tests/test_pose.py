"""The top-down path (edgepose.pose): which crop, crops and back to image pixels, Pose."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.coords import CROP_PADDING, WHOLE_IMAGE_PADDING, apply_affine, whole_image_box
from edgepose.errors import EngineError
from edgepose.pose import Pose, crop_people, crop_to_image, person_crops
from edgepose.preprocess import box_affine

from meta_helpers import tiny_meta


def test_one_crop_rule_for_boxes_and_for_no_box():
    img = np.zeros((120, 200, 3), np.uint8)
    box, pad = whole_image_box(200, 120)
    assert box.tolist() == [0.0, 0.0, 200.0, 120.0] and pad == WHOLE_IMAGE_PADDING == 1.0
    (whole,), pads = person_crops(img, None)  # no boxes: the whole image, by that rule
    assert whole.tolist() == box.tolist() and pads == [pad]
    boxes, pads = person_crops(img, [[10, 20, 30, 40], (0, 0, 5, 5)])
    assert [b.tolist() for b in boxes] == [[10, 20, 30, 40], [0, 0, 5, 5]]
    assert pads == [CROP_PADDING, CROP_PADDING] and CROP_PADDING == 1.25
    assert person_crops(img, [], 1.5) == ([], [])


def test_crop_people_then_crop_to_image_round_trip():
    meta = tiny_meta("dsnt", "standin", (64, 48))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    boxes = [np.array([10.0, 20, 60, 120]), np.array([150.0, 40, 50, 100])]
    batch, mats = crop_people(meta, img, boxes, [CROP_PADDING, 1.0])
    assert batch.shape == (2, 3, 64, 48) and batch.dtype == np.float32
    np.testing.assert_allclose(mats[1], box_affine(boxes[1], meta, 1.0))
    pts = rng.uniform(0, 200, size=(2, 17, 2))  # image px
    in_crop = np.stack([apply_affine(p, m) for p, m in zip(pts, mats)])
    np.testing.assert_allclose(crop_to_image(in_crop, mats), pts, atol=1e-9)
    np.testing.assert_allclose(crop_to_image(in_crop, np.stack(mats)), pts, atol=1e-9)
    with pytest.raises(EngineError, match=r"coords of shape \(2, 17, 2\) for 3 crops"):
        crop_to_image(in_crop, mats + mats[:1])


def test_pose_reads_by_joint_name_and_writes_coco():
    kp = np.array([[1.0, 2.0], [3.0, 4.0]])
    p = Pose(np.array([0.0, 0, 10, 10]), kp, np.array([0.5, 1.0]), names=("a", "b"))
    np.testing.assert_array_equal(p["b"], [3.0, 4.0, 1.0])
    with pytest.raises(KeyError, match="no joint 'c'"):
        p["c"]
    assert p.to_dict() == {"bbox": [0.0, 0.0, 10.0, 10.0],
                           "keypoints": [1.0, 2.0, 0.5, 3.0, 4.0, 1.0], "score": 0.75}
    assert Pose(p.box, kp, p.scores, track_id=3).to_dict()["track_id"] == 3

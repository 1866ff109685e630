"""The top-down path (edgepose.topdown): which crop, crops and back to image pixels; Pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgepose.coords import CROP_PADDING, WHOLE_IMAGE_PADDING, apply_affine, whole_image_box
from edgepose.errors import EngineError
from edgepose.pose import Pose
from edgepose.topdown import PersonBoxes, crop_people, crop_to_image
from edgepose.preprocess import box_affine

from meta_helpers import tiny_meta


def test_one_crop_rule_for_boxes_and_for_no_box():
    img = np.zeros((120, 200, 3), np.uint8)
    box, pad = whole_image_box(200, 120)
    assert box.tolist() == [0.0, 0.0, 200.0, 120.0] and pad == WHOLE_IMAGE_PADDING == 1.0
    whole = PersonBoxes.of(img, None)  # no boxes: the whole image, by that rule
    assert whole.boxes[0].tolist() == box.tolist() and whole.paddings == [pad]
    assert whole.scores is None
    given = PersonBoxes.of(img, [[10, 20, 30, 40], (0, 0, 5, 5)])
    assert [b.tolist() for b in given.boxes] == [[10, 20, 30, 40], [0, 0, 5, 5]]
    assert given.paddings == [CROP_PADDING, CROP_PADDING] and CROP_PADDING == 1.25
    empty = PersonBoxes.of(img, [], 1.5)
    assert len(empty) == 0 and empty.boxes == [] and empty.paddings == []


def test_detector_boxes_take_the_detector_files_padding_and_scores():
    """One policy per kind of box: a detector's boxes are padded by its own measured
    crop_padding (the bundled NanoDet: 1.1, not the 1.25 of ground-truth boxes)."""
    import cv2

    from edgepose.engines.detector import Detector

    det = Detector(threads=1, offline=True)
    img = cv2.imread(str(Path(__file__).parent / "assets" / "multi" / "000000252219.jpg"))
    found = PersonBoxes.detected(det, img)
    boxes, scores = det(img)
    assert len(found) == len(boxes) >= 2 and det.crop_padding != CROP_PADDING
    assert found.paddings == [det.crop_padding] * len(boxes)
    np.testing.assert_allclose(found.scores, scores)
    # the people hidden in each other's crops: those at the live threshold (what tracking
    # starts), so run --multi and predict --multi hide the same people
    live = det.spec["score_threshold"]
    assert found.hide == [s >= live for s in scores] and det.threshold < live
    assert PersonBoxes.of(img, boxes).hide is None  # given boxes: nobody hidden


def test_crop_hides_the_other_people_outside_its_own_box():
    """Golden pixels: two people side by side in flat colours on grey; a crop of the
    first (padded wide enough to hold the second) shows the second filled with the crop's
    mean colour where it lies outside the first's box, and is otherwise untouched."""
    from edgepose.preprocess import crop, normalize

    meta = tiny_meta("dsnt", "standin", (64, 64))
    meta.mean, meta.std, meta.color = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], "BGR"
    img = np.full((200, 240, 3), 100, np.uint8)
    a, b = np.array([60.0, 40, 40, 120]), np.array([110.0, 50, 40, 120])  # overlap x 110-100
    img[40:160, 60:100] = (0, 0, 255)
    img[50:170, 110:150] = (0, 255, 0)
    plain, mats = crop_people(meta, img, [a, b], [2.0, 2.0])
    hidden, _ = crop_people(meta, img, [a, b], [2.0, 2.0], hide=[True, True])
    m = mats[0]
    raw = crop(img, m, (64, 64)).astype(np.float64) / 255.0  # what the crop held
    fill = np.floor(raw.reshape(-1, 3).mean(axis=0) * 255.0) / 255.0

    def at(x, y):  # image px -> crop pixel (row, col)
        u, v = apply_affine(np.array([[x, y]]), m)[0]
        return int(round(v)), int(round(u))

    r, c = at(140, 120)  # inside the second person, outside the first's box
    np.testing.assert_allclose(hidden[0, :, r, c], fill, atol=1e-6)
    np.testing.assert_allclose(plain[0, :, r, c], [0, 1, 0], atol=1e-6)
    r, c = at(80, 100)  # the first person: kept
    np.testing.assert_array_equal(hidden[0, :, r, c], plain[0, :, r, c])
    r, c = at(30, 100)  # background beside neither: kept
    np.testing.assert_array_equal(hidden[0, :, r, c], plain[0, :, r, c])
    changed = np.abs(hidden[0] - plain[0]).max(axis=0) > 0
    assert 0 < changed.mean() < 0.5
    # the second crop hides the first the same way; nothing hidden -> preprocess exactly
    assert np.abs(hidden[1] - plain[1]).max() > 0.5
    only_a, _ = crop_people(meta, img, [a, b], [2.0, 2.0], hide=[True, False])
    np.testing.assert_array_equal(only_a[0], plain[0])  # b is not flagged: a's crop as is
    assert np.abs(only_a[1] - plain[1]).max() > 0.5  # a is flagged: hidden in b's crop
    np.testing.assert_array_equal(plain[0], normalize(crop(img, m, (64, 64)), meta))


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


def test_oks_is_cocos_definition():
    from edgepose.pose import oks
    from edgepose.skeleton import COCO

    a = np.zeros((17, 2))
    sig = np.array(COCO.sigmas)
    assert oks(a, a, 100.0, sig) == 1.0
    b = a.copy()
    b[0] = [3.0, 4.0]  # the nose 5 px off, area 400: exp(-25 / (2 * 400 * (2 * 0.026)^2))
    want = (16 + np.exp(-25.0 / (2 * 400.0 * (2 * sig[0]) ** 2))) / 17
    assert oks(a, b, 400.0, sig) == pytest.approx(want, rel=1e-12)


def test_two_boxes_of_one_person_are_merged_and_two_people_kept():
    """OKS NMS on a real photo: a second, shifted box around the same person gives a
    near-identical pose and is dropped; the other labelled person stays."""
    import json

    import cv2

    from edgepose.app.api import load
    from edgepose.pose import detected_people
    from edgepose.skeleton import COCO

    multi = Path(__file__).resolve().parent / "assets" / "multi"
    gt = json.loads((multi / "person_keypoints.json").read_text())
    anns = [a for a in gt["annotations"] if a["image_id"] == 214753 and a["num_keypoints"] >= 5]
    assert len(anns) == 2
    img = cv2.imread(str(multi / "000000214753.jpg"))
    a, b = (np.array(x["bbox"], float) for x in anns)
    shifted = a + [0.05 * a[2], 0.04 * a[3], 0, 0]  # the same person, a looser detection
    model = load(None, device="cpu", threads=1)
    poses = model.predict(img, boxes=[a, shifted, b])
    kept = detected_people(poses, [0.9, 0.6, 0.8], COCO.sigmas)
    assert len(kept) == 2, [p.box for p in kept]
    assert kept[0].box_score == 0.9 and kept[1].box_score == 0.8, "the better duplicate stays"
    assert kept[0].score == pytest.approx(0.9 * float(np.mean(kept[0].scores)))
    assert [p.score for p in kept] == sorted((p.score for p in kept), reverse=True)
    # without sigmas (another joint set) nothing is merged, only ranked
    assert len(detected_people(poses, [0.9, 0.6, 0.8], None)) == 3

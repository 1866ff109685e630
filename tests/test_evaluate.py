"""Metric golden values; COCO OKS AP (pycocotools) against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepose.coords import apply_affine, crop_affine
from edgepose.errors import DataError
from edgepose.evaluate import (
    bbox_normaliser, coco_keypoint_ap, coco_results, format_table, mean_pixel_error, pck, pckh,
    teacher_agreement, torso_pck,
)
from edgepose.topdown import crop_to_image
from edgepose.skeleton import COCO

SIGMAS = np.asarray(COCO.sigmas)
K = 17
COCO_OKS_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)  # AP = their mean


def test_pck_golden():
    gt = np.zeros((2, 4, 2))
    pred = gt.copy()
    # sample 0: bbox max side 100 -> thresholds 5 px (0.05) and 10 px (0.1)
    pred[0, :, 0] = [0.0, 4.0, 7.0, 30.0]
    # sample 1: bbox max side 20 -> thresholds 1 px and 2 px; joint 3 unlabelled
    pred[1, :, 1] = [0.5, 1.5, 3.0, 0.0]
    visible = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    bbox = np.array([[0, 0, 60, 100], [5, 5, 20, 10]])
    norm = bbox_normaliser(bbox)
    assert norm.tolist() == [100.0, 20.0], norm
    # 0.05: s0 -> 0, 4 hit (7, 30 miss); s1 -> 0.5 hits (1.5, 3 miss): 3 / 7
    assert pck(pred, gt, visible, norm, 0.05) == pytest.approx(3 / 7)
    # 0.1: s0 -> 0, 4, 7 hit; s1 -> 0.5, 1.5 hit: 5 / 7
    assert pck(pred, gt, visible, norm, 0.1) == pytest.approx(5 / 7)
    assert pckh(pred, gt, visible, np.array([10.0, 10.0]), 0.5) == pytest.approx(5 / 7)
    expected_err = (0 + 4 + 7 + 30 + 0.5 + 1.5 + 3) / 7
    assert mean_pixel_error(pred, gt, visible) == pytest.approx(expected_err)


def test_pixel_error_through_inverse_affine():
    rng = np.random.default_rng(0)
    gt_img = rng.uniform(100, 300, size=(3, K, 2))
    affines = np.stack([crop_affine((200, 200), (180, 240), (48, 64), rot)
                        for rot in (0.0, 30.0, -45.0)])
    # prediction off by (3, 4) px in the IMAGE -> 5 px everywhere, whatever the crop scale
    pred_crop = np.stack([apply_affine(gt_img[i] + [3.0, 4.0], affines[i]) for i in range(3)])
    vis = np.ones((3, K))
    assert mean_pixel_error(crop_to_image(pred_crop, affines), gt_img, vis) == pytest.approx(5.0)
    back = crop_to_image(np.stack([apply_affine(gt_img[i], affines[i]) for i in range(3)]),
                         affines)
    np.testing.assert_allclose(back, gt_img, atol=1e-9)
    # In crop pixels the same error is about 3.75x smaller (scale 48/180 .. 64/240)
    crop_gt = np.stack([apply_affine(gt_img[i], affines[i]) for i in range(3)])
    assert mean_pixel_error(pred_crop, crop_gt, vis) == pytest.approx(5.0 * 64 / 240)


def test_teacher_agreement_golden():
    """PCK of the box's longer side against the teacher's keypoints, over the joints the
    teacher labels only."""
    ref = np.zeros((2, 4, 3))
    ref[..., 2] = 2
    ref[1, 3, 2] = 0  # the teacher did not label this joint: not counted
    pred = ref[..., :2].copy()
    pred[0, :, 0] = [0.0, 4.0, 7.0, 30.0]  # box side 100: 5 px / 10 px
    pred[1, :, 1] = [0.5, 1.5, 3.0, 99.0]  # box side 20: 1 px / 2 px
    boxes = np.array([[0, 0, 60, 100], [5, 5, 20, 10]])
    got = teacher_agreement(pred, ref, boxes)
    assert got == {"people": 2, "pck@0.05": pytest.approx(3 / 7), "pck@0.1": pytest.approx(5 / 7)}
    empty = teacher_agreement(np.zeros((0, 4, 2)), np.zeros((0, 4, 3)), np.zeros((0, 4)))
    assert empty["people"] == 0 and np.isnan(empty["pck@0.05"]) and np.isnan(empty["pck@0.1"])


def test_torso_pck_counts_the_limb_joints():
    """LSP's PCK@0.2 with the torso normaliser over the 12 limb joints (COCO 5..16): the
    face joints never count; a person without a labelled torso is skipped."""
    gt = np.zeros((2, K, 3))
    gt[0, :, 2] = 2
    gt[0, [5, 6], :2] = [[0, 0], [40, 0]]  # shoulders
    gt[0, [11, 12], :2] = [[0, 100], [40, 100]]  # hips: torso = |(0,0)-(40,100)| ~ 107.7
    torso = float(np.hypot(40, 100))
    pred = gt[..., :2].copy()
    pred[0, 0] += 1000  # nose: not a limb joint
    pred[0, 7] += [0.19 * torso, 0]  # within 0.2 x torso
    pred[0, 8] += [0.21 * torso, 0]  # just outside: the one miss
    pred[1] += 1000  # second person: no torso labelled, skipped
    gt[1, :5, 2] = 2
    assert torso_pck(pred, gt) == pytest.approx(11 / 12)
    assert torso_pck(pred, gt, alpha=0.3) == 1.0


def _write_coco(path, gts):
    """gts: list of (keypoints (K, 2), visible (K,), bbox xywh) -> COCO keypoints JSON."""
    images, anns = [], []
    for i, (kp, vis, box) in enumerate(gts):
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        flat = np.concatenate([kp, vis[:, None]], 1).reshape(-1)
        anns.append({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
            "keypoints": [float(v) for v in flat], "num_keypoints": int((vis > 0).sum()),
            "bbox": [float(v) for v in box], "area": float(box[2] * box[3]),
        })
    cats = [{"id": 1, "name": "person", "keypoints": list(COCO.joints),
             "skeleton": [[a + 1, b + 1] for a, b in COCO.limbs]}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


def _random_gts(rng, n):
    gts = []
    for _ in range(n):
        w, h = rng.uniform(60, 200), rng.uniform(120, 400)
        x, y = rng.uniform(0, 300), rng.uniform(0, 60)
        kp = np.stack([rng.uniform(x, x + w, K), rng.uniform(y, y + h, K)], 1)
        vis = rng.choice([0, 1, 2], size=K, p=[0.15, 0.15, 0.7]).astype(float)
        vis[0] = 2
        gts.append((kp, vis, np.array([x, y, w, h])))
    return gts


def test_one_joint_oks_golden(tmp_path):
    """One person, one labelled joint (left_shoulder, sigma 0.079) off by (3, 4) px, area
    1000 px^2: OKS = exp(-25 / (2 * 1000 * (2 * 0.079)^2)) by hand; with one person AP is
    the fraction of the thresholds 0.50:0.95 that OKS reaches."""
    gt = np.full((K, 2), 100.0)
    vis = np.zeros(K)
    vis[5] = 2
    ann = tmp_path / "gt.json"
    _write_coco(ann, [(gt, vis, np.array([80.0, 80.0, 20.0, 50.0]))])
    expected = np.exp(-25.0 / (2 * 1000.0 * (2 * 0.079) ** 2))
    assert 0.60 < expected < 0.65, expected
    res = coco_results([1], (gt + [3.0, 4.0])[None], np.full((1, K), 0.9))
    stats = coco_keypoint_ap(ann, res)
    assert stats["AP"] == pytest.approx(np.mean(COCO_OKS_THRESHOLDS <= expected)), stats
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == 0.0, stats
    # a miss of 20 px on that joint: OKS exp(-400 / 49.9) ~ 0.0003, below every threshold
    res = coco_results([1], (gt + [12.0, 16.0])[None], np.full((1, K), 0.9))
    assert coco_keypoint_ap(ann, res)["AP"] == 0.0


def test_perfect_predictions_give_ap_one(tmp_path):
    rng = np.random.default_rng(1)
    gts = _random_gts(rng, 12)
    ann = tmp_path / "gt.json"
    _write_coco(ann, gts)
    res = coco_results(range(1, 13), np.stack([g[0] for g in gts]), np.full((12, K), 0.9))
    stats = coco_keypoint_ap(ann, res)
    assert stats["AP"] == pytest.approx(1.0), stats
    assert stats["AR"] == pytest.approx(1.0), stats


def test_uniform_shift_gives_hand_computed_ap(tmp_path):
    """Every person has the same area and the same shift -> one OKS value for all; AP is
    then the fraction of the 10 thresholds 0.50:0.95 that this OKS reaches."""
    n, area = 8, 100.0 * 200.0
    gts = []
    for i in range(n):
        kp = np.stack([np.linspace(110, 190, K), np.linspace(50, 240, K)], 1) + i
        gts.append((kp, np.full(K, 2.0), np.array([100.0 + i, 45.0 + i, 100.0, 200.0])))
    ann = tmp_path / "gt.json"
    _write_coco(ann, gts)
    shift = np.array([6.0, 8.0])  # 10 px
    expected_oks = np.mean(np.exp(-100.0 / (2 * area * (2 * SIGMAS) ** 2)))
    assert 0.6 < expected_oks < 0.9, expected_oks
    assert np.min(np.abs(COCO_OKS_THRESHOLDS - expected_oks)) > 0.005
    expected_ap = float(np.mean(COCO_OKS_THRESHOLDS <= expected_oks))
    preds = np.stack([g[0] + shift for g in gts])
    res = coco_results(range(1, n + 1), preds, np.full((n, K), 0.8))
    stats = coco_keypoint_ap(ann, res)
    assert stats["AP"] == pytest.approx(expected_ap, abs=1e-6), (stats, expected_oks)
    assert expected_ap < 1.0


def test_coco_ap_missing_file_is_clear(tmp_path):
    with pytest.raises(DataError, match="not found"):
        coco_keypoint_ap(tmp_path / "nope.json", [{"image_id": 1}])


def test_format_table_aligned():
    text = format_table({"pck@0.1": 0.5, "num_samples": 3}, title="t")
    lines = text.splitlines()
    assert lines[0] == "t" and len(lines[1]) == len(lines[2]), text

"""Synthetic COCO-format generator: determinism, COCO validity, exact ground truth."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from edgepose.data.figures import (
    L_EAR, L_ELB, L_EYE, L_KNE, L_SHO, ONE, R_EAR, R_ELB, R_EYE, R_KNE, R_SHO, FigureAngles, Prim,
    draw_prim, figure_prims, pose_geometry, quantize,
)
from edgepose.data.synthetic import (
    DemoScene, SynthConfig, coco_categories, generate_coco_dataset, render_scene, sample_appearance,
    sample_pose,
)
from edgepose.skeleton import COCO


def centroid(img: np.ndarray) -> np.ndarray:
    w = img.astype(np.float64)
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def read_images(root, split):
    return {p.name: cv2.imread(str(p)) for p in sorted((root / "images" / split).glob("*.jpg"))}


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_and_pixels(tmp_path):
    a = generate_coco_dataset(tmp_path / "a", 5, seed=3, image_size=(96, 80), progress=False)
    b = generate_coco_dataset(tmp_path / "b", 5, seed=3, image_size=(96, 80), progress=False)
    assert a.read_bytes() == b.read_bytes(), "same seed must give byte-identical JSON"
    ia, ib = read_images(tmp_path / "a", "train"), read_images(tmp_path / "b", "train")
    assert list(ia) == list(ib) and len(ia) == 5, f"image files differ: {list(ia)} {list(ib)}"
    for name in ia:
        assert ia[name].shape == (80, 96, 3), f"{name} has shape {ia[name].shape}"
        assert np.array_equal(ia[name], ib[name]), f"{name} pixels differ for the same seed"
    c = generate_coco_dataset(tmp_path / "c", 5, seed=4, image_size=(96, 80), progress=False)
    assert c.read_bytes() != a.read_bytes(), "a different seed must give different labels"
    ic = read_images(tmp_path / "c", "train")
    assert not np.array_equal(ia["000001.jpg"], ic["000001.jpg"]), "different seed, same image"


def test_image_content_independent_of_dataset_size(tmp_path):
    small = generate_coco_dataset(tmp_path / "s", 2, seed=1, image_size=(64, 64), progress=False)
    big = generate_coco_dataset(tmp_path / "b", 4, seed=1, image_size=(64, 64), progress=False)
    js, jb = json.loads(small.read_text()), json.loads(big.read_text())
    first = [a for a in jb["annotations"] if a["image_id"] <= 2]
    assert [a["keypoints"] for a in js["annotations"]] == [a["keypoints"] for a in first], \
        "image i must not depend on how many images are generated"


# ----------------------------------------------------------------------------- COCO validity


def test_pycocotools_loads_and_perfect_predictions_score_ap_1(synth_coco):
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    gt = PyCOCO(str(synth_coco.val_json))
    cats = gt.loadCats(gt.getCatIds())
    assert cats == coco_categories(), "categories entry must be COCO's person category"
    assert cats[0]["keypoints"] == list(COCO.joints), "keypoint names in COCO order"
    assert cats[0]["skeleton"][0] == [16, 14], "skeleton is 1-based like COCO's"
    anns = gt.loadAnns(gt.getAnnIds())
    assert len(gt.getImgIds()) == 16 and len(anns) >= 16, f"{len(anns)} annotations"
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "score": 1.0} for a in anns if a["num_keypoints"] > 0]
    ev = COCOeval(gt, gt.loadRes(results), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0), f"ground truth as predictions gave AP {ev.stats[0]}"


def test_annotation_structure(synth_coco):
    data = json.loads(synth_coco.train_json.read_text())
    images = {im["id"]: im for im in data["images"]}
    assert len(images) == 48, "48 training images"
    for ann in data["annotations"]:
        im = images[ann["image_id"]]
        assert (synth_coco.image_root("train") / im["file_name"]).is_file(), im["file_name"]
        assert ann["iscrowd"] == 0 and ann["category_id"] == 1
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        v = kps[:, 2]
        assert set(np.unique(v)) <= {0, 1, 2}, f"bad visibility flags {v}"
        assert ann["num_keypoints"] == int((v > 0).sum()), "num_keypoints = labelled count"
        assert np.all(kps[v == 0, :2] == 0), "unlabelled joints are (0, 0) as in COCO"
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and ann["area"] > 0, f"empty box/area in ann {ann['id']}"
        assert x >= 0 and y >= 0 and x + w <= im["width"] + 1e-6 and y + h <= im["height"] + 1e-6
        lab = kps[v > 0, :2]
        # COCO boxes have pixel edges at integers; our keypoints have centres on integers.
        assert np.all(lab[:, 0] >= x - 0.5 - 1e-6) and np.all(lab[:, 0] <= x + w - 0.5 + 1e-6), \
            f"ann {ann['id']}: labelled keypoint outside its box in x"
        assert np.all(lab[:, 1] >= y - 0.5 - 1e-6) and np.all(lab[:, 1] <= y + h - 0.5 + 1e-6), \
            f"ann {ann['id']}: labelled keypoint outside its box in y"
        assert np.all(lab[:, 0] <= im["width"] - 0.5) and np.all(lab[:, 1] <= im["height"] - 0.5)
        # Labels sit on the 1/16 px drawing grid, so they are exact.
        assert np.allclose(lab * ONE, np.round(lab * ONE)), "keypoints off the drawing grid"


# ----------------------------------------------------------------------------- ground truth


@pytest.mark.parametrize("radius_range, mean_tol, max_tol", [((3, 8), 0.03, 0.1),
                                                             ((1, 3), 0.07, 0.2)])
def test_drawn_disc_and_capsule_centres(radius_range, mean_tol, max_tol):
    """The primitives the figures are made of are centred where the coordinates say."""
    rng = np.random.default_rng(0)
    disc_err, caps_err = [], []
    for _ in range(60):
        c = quantize(rng.uniform(20, 44, 2))
        r = rng.uniform(*radius_range)
        img = np.zeros((64, 64), np.uint8)
        draw_prim(img, Prim("disc", (255, 255, 255), c, r0=r), color=255)
        disc_err.append(np.abs(centroid(img) - c).max())
        p, q = quantize(rng.uniform(15, 49, 2)), quantize(rng.uniform(15, 49, 2))
        img = np.zeros((64, 64), np.uint8)
        draw_prim(img, Prim("capsule", (255, 255, 255), p, q=q, r0=r, r1=r), color=255)
        caps_err.append(np.abs(centroid(img) - (p + q) / 2).max())
    for name, err in (("disc", disc_err), ("capsule", caps_err)):
        assert np.mean(err) < mean_tol and np.max(err) < max_tol, \
            f"{name} centroid error mean {np.mean(err):.3f} max {np.max(err):.3f} px"


def test_every_keypoint_is_a_drawn_joint_centre():
    rng = np.random.default_rng(5)
    for _ in range(20):
        g = pose_geometry(sample_pose(rng, lying_prob=0.3), rng.uniform(40, 60, 2),
                          rng.uniform(8, 20))
        prims = figure_prims(g, sample_appearance(rng))
        centres = [pr.p for pr in prims if pr.kind != "poly"]
        centres += [pr.q for pr in prims if pr.q is not None]
        for j, kp in enumerate(g.keypoints):
            if j in (L_EAR, R_EAR) and g.ear_hidden[j - L_EAR]:
                continue  # a hidden ear is not drawn (labelled v=1)
            assert any(np.array_equal(kp, c) for c in centres), \
                f"{COCO.joints[j]} at {kp} is not the centre of any drawn part"


def test_rendered_joint_pixels_belong_to_the_figure():
    """On a blank canvas every keypoint pixel is painted, with the colour of its part."""
    rng = np.random.default_rng(2)
    pose = FigureAngles(shoulder=(90.0, 90.0), elbow=(0.0, 0.0), hip=(20.0, 20.0), knee=(0.0, 0.0))
    g = pose_geometry(pose, (150.0, 165.0), 80.0)
    app = sample_appearance(rng)
    prims = figure_prims(g, app)
    img = np.zeros((420, 300, 3), np.uint8)
    for pr in prims:
        draw_prim(img, pr)
    for j, (x, y) in enumerate(g.keypoints):
        assert img[int(round(y)), int(round(x))].any(), f"{COCO.joints[j]} pixel is empty"
    # Face parts drawn on top of the plain skin of the head: the pixels each one changes
    # are centred on its keypoint.
    for j, part in ((0, "nose"), (1, "left_eye"), (2, "right_eye")):
        without = np.zeros_like(img)
        for pr in prims:
            if pr.part != part:
                draw_prim(without, pr)
        diff = np.abs(img.astype(np.int32) - without.astype(np.int32)).sum(axis=2)
        err = np.abs(centroid(diff) - g.keypoints[j]).max()
        assert err < 0.1, f"{part}: drawn centre is {err:.3f} px from its keypoint"
    hand = next(pr for pr in prims if pr.part == "left_hand")
    x, y = np.round(g.keypoints[9]).astype(int)
    assert tuple(img[y, x]) == hand.color, "the left wrist pixel has the left hand's colour"


def test_left_is_the_persons_left_and_lighter():
    g = pose_geometry(FigureAngles(), (100.0, 100.0), 30.0)
    kp = g.keypoints
    for left, right in ((L_SHO, R_SHO), (L_EYE, R_EYE), (L_EAR, R_EAR), (L_KNE, R_KNE)):
        assert kp[left, 0] > kp[right, 0], \
            f"{COCO.joints[left]} must be on the image's right for a figure facing the camera"
    app = sample_appearance(np.random.default_rng(0))
    img = np.zeros((220, 200, 3), np.uint8)
    for pr in figure_prims(g, app):
        draw_prim(img, pr)
    for left, right in ((L_ELB, R_ELB), (L_KNE, R_KNE)):
        lx, ly = np.round(kp[left]).astype(int)
        rx, ry = np.round(kp[right]).astype(int)
        lv, rv = img[ly, lx].astype(int).sum(), img[ry, rx].astype(int).sum()
        assert lv > rv + 30, f"left limb ({lv}) must be visibly lighter than right ({rv})"


def test_head_yaw_hides_the_far_ear():
    g = pose_geometry(FigureAngles(head_yaw=0.7), (50.0, 50.0), 20.0)
    assert g.ear_hidden == (True, False), "turning to the left hides the left ear"
    assert g.keypoints[0, 0] > 50.0 - 1e-9, "the nose turns towards the person's left"


def test_occlusion_and_outside_flags():
    cfg = SynthConfig(image_size=(96, 96), occluder_prob=1.0, cut_off_prob=1.0)
    flags = []
    for i in range(12):
        img, people = render_scene(np.random.default_rng(i), cfg)
        assert img.shape == (96, 96, 3) and img.dtype == np.uint8
        for p in people:
            out = p.visibility == 0
            assert np.all(p.keypoints[out] == 0), "outside joints must be written as (0, 0)"
            inside = p.keypoints[~out]
            assert np.all((inside >= -0.5) & (inside < 95.5)), "labelled joints in the image"
            flags.extend(p.visibility.tolist())
    assert flags.count(0) > 0 and flags.count(1) > 0 and flags.count(2) > 0, \
        f"expected outside (0), hidden (1) and visible (2) joints, got {np.bincount(flags)}"


# ----------------------------------------------------------------------------- demo scene


def test_demo_scene_moves_smoothly_and_is_deterministic():
    scene = DemoScene(320, 240, seed=1)
    img, kp, vis, box = scene.frame(0.0)
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert kp.shape == (17, 2) and vis.shape == (17,) and box.shape == (4,)
    img2, kp2, _, _ = DemoScene(320, 240, seed=1).frame(0.0)
    assert np.array_equal(img, img2) and np.array_equal(kp, kp2), "same seed, same frame"
    prev = kp
    moved = 0.0
    for t in np.arange(1, 90) / 30.0:
        _, k, v, b = scene.frame(float(t))
        step = np.abs(k - prev).max()
        assert step < 8.0, f"a joint jumped {step:.1f} px between frames at t={t:.2f}s"
        moved = max(moved, float(np.abs(k - kp).max()))
        lab = k[v > 0]
        assert np.all(lab[:, 0] >= b[0] - 0.5 - 1e-3) and np.all(lab[:, 0] <= b[0] + b[2]), \
            "visible joints inside the returned box"
        prev = k
    assert moved > 5.0, "the figure should move over 3 seconds"
    assert not math.isnan(float(kp.sum()))

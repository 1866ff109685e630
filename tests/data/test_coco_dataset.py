"""CocoKeypoints on the synthetic data: crops, augmentation round trips, flips, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from edgepose.coords import apply_affine, invert_affine
from edgepose.data.coco import CocoKeypoints
from edgepose.data.transforms import AugConfig
from edgepose.errors import DataError
from edgepose.metadata import ModelMeta
from edgepose.preprocess import box_affine, preprocess
from edgepose.skeleton import COCO

L_KNEE, R_KNEE, L_WRIST, R_WRIST = 13, 14, 9, 10


@pytest.fixture(scope="module")
def meta() -> ModelMeta:
    return ModelMeta(head="heatmap", backbone="resnet18", input_size=(128, 96))


def val_set(synth_coco, meta, **kw) -> CocoKeypoints:
    return CocoKeypoints(synth_coco.val_json, synth_coco.image_root("val"), meta, **kw)


def to_bgr(image: torch.Tensor, meta: ModelMeta) -> np.ndarray:
    x = image.numpy().transpose(1, 2, 0) * np.array(meta.std) + np.array(meta.mean)
    return np.clip(x[:, :, ::-1] * 255 + 0.5, 0, 255).astype(np.uint8)


def test_loads_synthetic_and_collates(synth_coco, meta):
    ds = val_set(synth_coco, meta)
    anns = json.loads(synth_coco.val_json.read_text())["annotations"]
    assert len(ds) == sum(a["num_keypoints"] > 0 for a in anns), "one sample per labelled person"
    s = ds[0]
    shapes = {k: tuple(v.shape) for k, v in s.items()}
    assert shapes["image"] == (3, 128, 96) and shapes["keypoints"] == (17, 2)
    assert shapes["visible"] == (17,) and shapes["affine"] == (2, 3) and shapes["bbox"] == (4,)
    assert s["image"].dtype == torch.float32 and s["keypoints"].dtype == torch.float32
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 128, 96) and batch["image_id"].shape == (4,)


def test_eval_crop_is_the_preprocess_crop(synth_coco, meta):
    """Validation samples must be exactly what the app feeds the model for that box."""
    import cv2

    ds = val_set(synth_coco, meta)
    for i in (0, 3, 7):
        s = ds[i]
        box = ds.samples[i]["bbox"]  # the float64 box (the tensor is float32)
        assert np.allclose(s["bbox"].numpy(), box)
        assert np.allclose(s["affine"].numpy(), box_affine(box, meta), atol=1e-5)
        img = cv2.imread(str(ds.image_path(i)))
        x, _ = preprocess(img, box, meta)
        assert torch.allclose(s["image"], torch.from_numpy(x), atol=1e-4), "pixels differ"
        lab = s["keypoints_image"][:, 2] > 0
        back = apply_affine(s["keypoints"].numpy()[lab.numpy()], invert_affine(s["affine"]))
        assert np.abs(back - s["keypoints_image"][lab, :2].numpy()).max() < 1e-3


def test_augmented_crops_invert_back_to_the_labels(synth_coco, meta):
    aug = AugConfig(scale=0.35, rotation=40, rotation_prob=1.0, flip_prob=0.5, shift=0.05)
    ds = val_set(synth_coco, meta, train=True, aug=aug)
    perm = COCO.flip_permutation()
    torch.manual_seed(0)
    seen_flip = set()
    for i in range(len(ds)):
        s = ds[i]
        m = s["affine"].numpy()
        flipped = np.linalg.det(m[:, :2]) < 0
        seen_flip.add(bool(flipped))
        src = s["keypoints_image"].numpy()
        if flipped:  # crop joint j is the person's joint perm[j] (left <-> right swapped)
            src = src[perm]
        lab = src[:, 2] > 0
        back = apply_affine(s["keypoints"].numpy().astype(np.float64), invert_affine(m))
        err = np.abs(back[lab] - src[lab, :2]).max()
        assert err < 0.01, f"sample {i}: keypoints map back with error {err:.4f} px"
        vis = s["visible"].numpy() > 0
        k = s["keypoints"].numpy()
        inside = (k[:, 0] >= -0.5) & (k[:, 0] < 95.5) & (k[:, 1] >= -0.5) & (k[:, 1] < 127.5)
        assert np.array_equal(vis, lab & inside), f"sample {i}: visible != labelled & inside"
    assert seen_flip == {True, False}, "both flipped and unflipped crops should occur"


def test_augmentation_is_reproducible_with_torch_seed(synth_coco, meta):
    ds = val_set(synth_coco, meta, train=True)
    torch.manual_seed(7)
    a = ds[2]
    torch.manual_seed(7)
    b = ds[2]
    assert torch.equal(a["affine"], b["affine"]) and torch.equal(a["image"], b["image"])


def test_flip_swaps_left_and_right(synth_coco, meta):
    plain = val_set(synth_coco, meta, train=True,
                    aug=AugConfig(scale=0.0, rotation_prob=0.0, flip_prob=0.0))
    flip = val_set(synth_coco, meta, train=True,
                   aug=AugConfig(scale=0.0, rotation_prob=0.0, flip_prob=1.0))
    checked = pairs = 0
    for i in range(len(plain)):
        p, f = plain[i], flip[i]
        kp, kf = p["keypoints"].numpy(), f["keypoints"].numpy()
        # The person's left wrist stays labelled left but lands on the mirrored position of
        # where the unflipped crop had it... which is the *right* wrist's slot there.
        for left, right in ((L_WRIST, R_WRIST), (L_KNEE, R_KNEE)):
            if p["visible"][left] > 0 and f["visible"][right] > 0:
                assert np.allclose(kf[right], [95 - kp[left, 0], kp[left, 1]], atol=1e-4), \
                    "a flipped left joint must be labelled right at the mirrored x"
                pairs += 1
        img_p, img_f = to_bgr(p["image"], meta), to_bgr(f["image"], meta)
        assert np.abs(img_f.astype(int) - img_p[:, ::-1].astype(int)).max() <= 1, \
            "the flipped crop must be the mirror image of the plain crop"
        checked += 1
    assert checked == len(plain) and pairs >= len(plain), f"only {pairs} joint pairs checked"


def test_flip_relabels_the_mirrored_legs(tmp_path, meta):
    """A hand-made image of one standing figure facing the camera (left leg drawn lighter).

    The mirror image of a person facing the camera is again a person facing the camera, so
    after the flip the joint labelled ``left_knee`` must be on the image's right, on the
    mirrored *right* leg (the darker one): the labels follow the geometry, as in COCO."""
    import cv2

    from edgepose.data.figures import Appearance, FigureAngles, draw_figure, figure_prims, shade
    from edgepose.data.figures import pose_geometry, prims_extent
    from edgepose.data.synthetic import coco_box, coco_categories

    app = Appearance(trousers=(40, 90, 160), side_shade=0.3)
    g = pose_geometry(FigureAngles(shoulder=(30, 30), hip=(15, 15)), (80.0, 85.0), 30.0)
    prims = figure_prims(g, app)
    img = np.full((170, 160, 3), 128, np.uint8)
    draw_figure(img, prims)
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), img)
    kps = np.concatenate([g.keypoints, np.full((17, 1), 2.0)], axis=1)
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 160, "height": 170}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "keypoints": kps.ravel().tolist(), "num_keypoints": 17,
                             "bbox": coco_box(prims_extent(prims), 160, 170), "area": 1000.0}],
            "categories": coco_categories()}
    (tmp_path / "a.json").write_text(json.dumps(data))
    aug = AugConfig(scale=0.0, rotation_prob=0.0, flip_prob=1.0)
    s = CocoKeypoints(tmp_path / "a.json", tmp_path / "img", meta, train=True, aug=aug)[0]
    k = s["keypoints"].numpy()
    crop = to_bgr(s["image"], meta)
    assert k[L_KNEE, 0] > k[R_KNEE, 0], "the flipped person still has their left on the right"
    light, dark = np.array(shade(app.trousers, 0.3)), np.array(shade(app.trousers, -0.3))
    for j, want in ((L_KNEE, dark), (R_KNEE, light)):
        x, y = np.round(k[j]).astype(int)
        got = crop[y, x].astype(int)
        assert np.abs(got - want).max() <= 3, f"{COCO.joints[j]} pixel {got}, expected {want}"


def test_half_body_crop_round_trips(synth_coco, meta):
    aug = AugConfig(half_body_prob=1.0, half_body_min_joints=8, flip_prob=0.0, rotation_prob=0.0)
    ds = val_set(synth_coco, meta, train=True, aug=aug)
    full = val_set(synth_coco, meta)
    torch.manual_seed(1)
    smaller = 0
    for i in range(len(ds)):
        s = ds[i]
        lab = s["keypoints_image"][:, 2].numpy() > 0
        back = apply_affine(s["keypoints"].numpy().astype(np.float64), invert_affine(s["affine"]))
        assert np.abs(back[lab] - s["keypoints_image"][lab, :2].numpy()).max() < 0.01
        smaller += bool(abs(np.linalg.det(s["affine"][:, :2].numpy()))
                        > abs(np.linalg.det(full[i]["affine"][:, :2].numpy())) * 1.2)
    assert smaller > 0, "half-body crops should zoom in on part of the person"


# ----------------------------------------------------------------------------- errors


def test_missing_file_names_it(tmp_path, synth_coco, meta):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="nope.json"):
        CocoKeypoints(missing, synth_coco.image_root("val"), meta)
    with pytest.raises(DataError, match="no_images"):
        CocoKeypoints(synth_coco.val_json, tmp_path / "no_images", meta)


def test_malformed_json_gives_position(tmp_path, synth_coco, meta):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "annotations": [\n  {"id": 1,, }]}')
    with pytest.raises(DataError, match=r"bad\.json.*line 2 column"):
        CocoKeypoints(bad, synth_coco.image_root("val"), meta)


def test_missing_key_is_named(tmp_path, synth_coco, meta):
    data = json.loads(synth_coco.val_json.read_text())
    del data["annotations"]
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="a.json.*'annotations'"):
        CocoKeypoints(tmp_path / "a.json", synth_coco.image_root("val"), meta)
    data = json.loads(synth_coco.val_json.read_text())
    del data["annotations"][2]["bbox"]
    (tmp_path / "b.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"annotations\[2\].*'bbox'"):
        CocoKeypoints(tmp_path / "b.json", synth_coco.image_root("val"), meta)
    mpii_meta = ModelMeta(head="heatmap", backbone="resnet18", input_size=(64, 64),
                          skeleton="mpii16")
    with pytest.raises(DataError, match="51 keypoint values; expected 48"):
        CocoKeypoints(synth_coco.val_json, synth_coco.image_root("val"), mpii_meta)


def test_unreadable_image_names_the_path(tmp_path, synth_coco, meta):
    root = tmp_path / "imgs"
    shutil.copytree(synth_coco.image_root("val"), root)
    ds = CocoKeypoints(synth_coco.val_json, root, meta)
    target = ds.image_path(0)
    target.write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match=f"{target.name}.*cannot be decoded"):
        ds[0]
    with pytest.raises(DataError, match=target.name):
        ds.check_images(progress=False)
    target.unlink()
    with pytest.raises(DataError, match=f"{target.name}.*does not exist"):
        ds[0]

"""MPII reader: a tiny MPII-format JSON (+ gt_valid.mat) converted from synthetic COCO data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import savemat

from edgepose.coords import apply_affine, invert_affine
from edgepose.data.mpii import MpiiKeypoints, head_size_from_box, read_headboxes_mat
from edgepose.data.transforms import AugConfig
from edgepose.errors import DataError
from edgepose.metadata import ModelMeta
from edgepose.skeleton import COCO_JOINTS, MPII_JOINTS

SAME_NAME = [MPII_JOINTS.index(n) for n in MPII_JOINTS if n in COCO_JOINTS]


def coco_to_mpii(kps: np.ndarray) -> np.ndarray:
    """(17, 3) COCO [x, y, v] -> (16, 3) MPII, 0-based px. Pelvis = mid hips, thorax = mid
    shoulders, upper neck 30% of the way to the nose, head top beyond the nose."""
    out = np.zeros((16, 3))
    for i, name in enumerate(MPII_JOINTS):
        if name in COCO_JOINTS:
            out[i] = kps[COCO_JOINTS.index(name)]

    def mid(a, b):
        pa, pb = kps[COCO_JOINTS.index(a)], kps[COCO_JOINTS.index(b)]
        ok = pa[2] > 0 and pb[2] > 0
        return np.array([*(pa[:2] + pb[:2]) / 2, 1.0 if ok else 0.0])

    out[6] = mid("left_hip", "right_hip")
    out[7] = mid("left_shoulder", "right_shoulder")
    nose = kps[0]
    ok = out[7, 2] > 0 and nose[2] > 0
    out[8] = [*(out[7, :2] + 0.3 * (nose[:2] - out[7, :2])), float(ok)]
    out[9] = [*(nose[:2] + 0.8 * (nose[:2] - out[7, :2])), float(ok)]
    out[out[:, 2] == 0, :2] = 0
    return out


@pytest.fixture(scope="module")
def mpii(synth_coco, tmp_path_factory):
    """(json path, mat path, image root, records with 0-based joints, head boxes 1-based)."""
    root = tmp_path_factory.mktemp("mpii")
    data = json.loads(synth_coco.val_json.read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    records, truth, boxes = [], [], []
    for ann in data["annotations"]:
        if ann["num_keypoints"] < 10:
            continue
        j = coco_to_mpii(np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3))
        x, y, w, h = ann["bbox"]
        scale = max(w, h) / 200.0
        center0 = np.array([x + w / 2 - 0.5, y + h / 2 - 0.5])  # 0-based centre
        head = j[9, :2]
        hb = [head[0] - 4 + 1, head[1] - 5 + 1, head[0] + 4 + 1, head[1] + 5 + 1]
        records.append({
            "image": names[ann["image_id"]],
            # 1-based, minus HRNet's 15 * scale shift that the reader adds back.
            "center": (center0 + 1 - [0, 15 * scale]).tolist(), "scale": scale,
            "joints": (j[:, :2] + 1).tolist(), "joints_vis": j[:, 2].tolist(),
            "head_box": hb,
        })
        truth.append(j)
        boxes.append(hb)
    path = root / "valid.json"
    path.write_text(json.dumps(records))
    b = np.asarray(boxes)  # (N, 4) -> headboxes_src (2, 2, N)
    mat = root / "gt_valid.mat"
    savemat(str(mat), {"headboxes_src": np.stack([b[:, :2].T, b[:, 2:].T])})
    return path, mat, synth_coco.image_root("val"), truth, b


@pytest.fixture(scope="module")
def meta() -> ModelMeta:
    return ModelMeta(head="dsnt", backbone="resnet18", input_size=(64, 64), skeleton="mpii16")


def test_reads_records_in_zero_based_pixels(mpii, meta):
    path, _, images, truth, boxes = mpii
    ds = MpiiKeypoints(path, images, meta)
    assert len(ds) == len(truth) >= 8, f"{len(ds)} samples"
    for i in range(len(ds)):
        s = ds[i]
        k = s["keypoints_image"].numpy()
        lab = truth[i][:, 2] > 0
        assert np.allclose(k[lab, :2], truth[i][lab, :2], atol=1e-4), \
            "1-based Matlab joints must come back as the 0-based synthetic labels"
        assert np.array_equal(k[:, 2] > 0, lab)
        assert s["head_size"].item() == pytest.approx(0.6 * np.hypot(8, 10), rel=1e-6)
        assert s["image"].shape == (3, 64, 64) and s["keypoints"].shape == (16, 2)
        back = apply_affine(s["keypoints"].numpy().astype(np.float64), invert_affine(s["affine"]))
        assert np.abs(back[lab] - truth[i][lab, :2]).max() < 1e-3
        # The crop is centred on the record's centre (0-based, after HRNet's shift).
        c = ds.samples[i]["center"]
        assert np.allclose(apply_affine(c, s["affine"].numpy()), [31.5, 31.5], atol=1e-9)


def test_headboxes_from_gt_valid_mat(mpii, meta):
    path, mat, images, truth, boxes = mpii
    hb = read_headboxes_mat(mat)
    assert np.allclose(hb, boxes), "headboxes_src (2, 2, N) -> (N, [x1, y1, x2, y2])"
    records = json.loads(path.read_text())
    for r in records:
        del r["head_box"]
    plain = path.parent / "no_heads.json"
    plain.write_text(json.dumps(records))
    ds = MpiiKeypoints(plain, images, meta, headboxes_mat=mat)
    assert ds[0]["head_size"].item() == pytest.approx(head_size_from_box(boxes[0]), rel=1e-6)
    assert np.isnan(MpiiKeypoints(plain, images, meta)[0]["head_size"].item()), "NaN if unknown"


def test_flip_augmentation_uses_mpii_pairs(mpii, meta):
    path, _, images, truth, _ = mpii
    aug = AugConfig(scale=0.0, rotation_prob=0.0, flip_prob=1.0)
    flipped = MpiiKeypoints(path, images, meta, train=True, aug=aug)[0]
    plain = MpiiKeypoints(path, images, meta)[0]
    kp, kf = plain["keypoints"].numpy(), flipped["keypoints"].numpy()
    lab = truth[0][:, 2] > 0
    r_wrist, l_wrist, thorax = 10, 15, 7
    if lab[l_wrist]:
        assert np.allclose(kf[r_wrist], [63 - kp[l_wrist, 0], kp[l_wrist, 1]], atol=1e-4)
    assert np.allclose(kf[thorax], [63 - kp[thorax, 0], kp[thorax, 1]], atol=1e-4), \
        "unpaired joints stay in place (mirrored)"


def test_errors(mpii, meta, tmp_path):
    path, mat, images, truth, _ = mpii
    coco_meta = ModelMeta(head="dsnt", backbone="resnet18", input_size=(64, 64))
    with pytest.raises(DataError, match="mpii16"):
        MpiiKeypoints(path, images, coco_meta)
    with pytest.raises(DataError, match="missing.json"):
        MpiiKeypoints(tmp_path / "missing.json", images, meta)
    (tmp_path / "obj.json").write_text('{"images": []}')
    with pytest.raises(DataError, match="obj.json.*JSON list"):
        MpiiKeypoints(tmp_path / "obj.json", images, meta)
    records = json.loads(path.read_text())
    del records[1]["joints_vis"]
    (tmp_path / "k.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match="record 1 has no 'joints_vis'"):
        MpiiKeypoints(tmp_path / "k.json", images, meta)
    short = tmp_path / "short.mat"
    savemat(str(short), {"headboxes_src": np.zeros((2, 2, 1))})
    with pytest.raises(DataError, match="short.mat"):
        MpiiKeypoints(path, images, meta, headboxes_mat=short)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="junk.mat"):
        MpiiKeypoints(path, images, meta, headboxes_mat=tmp_path / "junk.mat")


def test_eval_cli_reads_mpii_list_json_and_headboxes(mpii, meta, tmp_path, capsys):
    """`edgepose eval` tells MPII's list JSON from COCO by itself, takes --headboxes for
    PCKh and says which normaliser it used."""
    import dataclasses

    from edgepose.app.cli import main
    from edgepose.checkpoint import save_checkpoint
    from edgepose.models import build_model

    path, mat, images, _, _ = mpii
    m = dataclasses.replace(meta, head_cfg={"width": 32})
    ckpt = tmp_path / "mpii.pt"
    save_checkpoint(ckpt, build_model(m), m)
    out = tmp_path / "m.json"
    assert main(["eval", str(ckpt), "--data", str(path), "--images", str(images),
                 "--headboxes", str(mat), "--json", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "(mpii; PCKh: head size from" in text
    assert "pckh@0.5" in json.loads(out.read_text())
    assert main(["eval", str(ckpt), "--data", str(path), "--images", str(images),
                 "--no-progress"]) == 0  # these records carry head_box themselves
    assert "(mpii; PCKh: head size from the records head_box)" in capsys.readouterr().out

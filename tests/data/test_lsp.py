"""LSP / LSPe -> COCO conversion, on committed LSP test-split images (tests/assets/lsp)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from edgepose.app.cli import main
from edgepose.data.lsp import LSP_TO_COCO, MATLAB_OFFSET, convert, read_joints
from edgepose.errors import DataError
from edgepose.skeleton import COCO_JOINTS

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "lsp"
SHARED_LSP = Path(__file__).resolve().parents[3] / "shared" / "data" / "lsp"
SUBSET = json.loads((ASSETS / "joints_subset.json").read_text())  # name -> 14 x [x, y, occ]
NUMBERS = sorted(int(n[2:6]) for n in SUBSET)


def make_lsp_folder(root: Path) -> Path:
    """An LSP-layout folder: a (3, 14, 2000) joints.mat holding the committed images' real
    rows (zeros elsewhere) and those images."""
    joints = np.zeros((3, 14, 2000))
    for name, rows in SUBSET.items():
        joints[:, :, int(name[2:6]) - 1] = np.asarray(rows).T
    (root / "images").mkdir(parents=True)
    savemat(str(root / "joints.mat"), {"joints": joints})
    for name in SUBSET:
        shutil.copyfile(ASSETS / name, root / "images" / name)
    return root


def test_converter_maps_every_joint_exactly(tmp_path):
    data = convert(make_lsp_folder(tmp_path / "lsp"), "lsp", "test", progress=False,
                   numbers=NUMBERS)
    assert [im["file_name"] for im in data["images"]] == sorted(SUBSET)
    for ann, im in zip(data["annotations"], data["images"]):
        rows = np.asarray(SUBSET[im["file_name"]])
        kps = np.asarray(ann["keypoints"]).reshape(17, 3)
        for src, dst in LSP_TO_COCO.items():
            x, y, occluded = rows[src]
            assert kps[dst, 0] == pytest.approx(x - MATLAB_OFFSET, abs=1e-3)
            assert kps[dst, 1] == pytest.approx(y - MATLAB_OFFSET, abs=1e-3)
            assert kps[dst, 2] == (1 if occluded else 2), "occluded -> v=1, visible -> v=2"
        assert np.all(kps[:5] == 0), "nose, eyes, ears are not in LSP: v=0"
        assert ann["num_keypoints"] == 12
        x, y, w, h = ann["bbox"]
        lab = kps[kps[:, 2] > 0, :2]
        assert x <= lab[:, 0].min() + 0.5 and x + w >= lab[:, 0].max() + 0.5
        assert y <= lab[:, 1].min() + 0.5 and y + h >= lab[:, 1].max() + 0.5
        assert (im["width"], im["height"]) == (
            __import__("cv2").imread(str(ASSETS / im["file_name"])).shape[1::-1])
        assert im["license"] == 4 and im["attribution"], "Flickr CC BY 2.0 attribution kept"
    assert data["licenses"][0]["url"].endswith("/by/2.0/")


def test_left_and_right_are_the_persons():
    """LSP labels the person's left/right, like COCO: names map name to name."""
    lsp_names = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee",
                 "left_ankle", "right_wrist", "right_elbow", "right_shoulder",
                 "left_shoulder", "left_elbow", "left_wrist")
    for src, dst in LSP_TO_COCO.items():
        assert COCO_JOINTS[dst] == lsp_names[src]
    # im1004 (tests/assets/lsp): a tennis player facing the camera -> her left shoulder
    # is on the image's right.
    rows = np.asarray(SUBSET["im1004.jpg"])
    assert rows[9, 0] > rows[8, 0], "left shoulder right of the right shoulder (frontal)"


@pytest.mark.skipif(not (SHARED_LSP / "joints.mat").is_file(), reason="../shared/data/lsp absent")
def test_subset_matches_the_real_joints_mat():
    """The committed rows equal joints.mat read independently (scipy, raw layout)."""
    raw = loadmat(str(SHARED_LSP / "joints.mat"))["joints"]
    for name, rows in SUBSET.items():
        np.testing.assert_allclose(np.asarray(rows), raw[:, :, int(name[2:6]) - 1].T, atol=1e-5)
    ours = read_joints(SHARED_LSP / "joints.mat", "lsp")
    np.testing.assert_array_equal(ours[1000], raw[:, :, 1000].T)


def test_lspet_layout_and_missing_joints(tmp_path):
    root = tmp_path / "lspet"
    (root / "images").mkdir(parents=True)
    joints = np.zeros((14, 3, 2))
    joints[:, 0, 0], joints[:, 1, 0], joints[:, 2, 0] = np.arange(14) + 10, 20, 1
    joints[3, 2, 0] = 0  # left hip missing
    joints[:, 2, 1] = 0  # nothing labelled: no annotation
    savemat(str(root / "joints.mat"), {"joints": joints})
    for i in (1, 2):
        shutil.copyfile(ASSETS / "im1001.jpg", root / "images" / f"im{i:05d}.jpg")
    data = convert(root, "lspet", progress=False)
    assert [im["id"] for im in data["images"]] == [100001, 100002]
    assert len(data["annotations"]) == 1
    kps = np.asarray(data["annotations"][0]["keypoints"]).reshape(17, 3)
    assert kps[11].tolist() == [0, 0, 0], "LSPe missing joint -> v=0, coordinates 0"
    assert kps[12].tolist() == [12 - 1, 19, 2], "right hip (LSP 2): x=12, y=20, 1-based"


def test_bad_joints_files_are_one_line_errors(tmp_path, capsys):
    root = make_lsp_folder(tmp_path / "lsp")
    with pytest.raises(DataError, match=r"\(3, 14, N\)"):
        savemat(str(tmp_path / "j.mat"), {"joints": np.zeros((14, 3, 5))})
        read_joints(tmp_path / "j.mat", "lsp")
    savemat(str(tmp_path / "k.mat"), {"other": np.zeros(3)})
    with pytest.raises(DataError, match="no 'joints' array"):
        read_joints(tmp_path / "k.mat", "lsp")
    (root / "images" / "im1001.jpg").unlink()
    out = tmp_path / "out.json"
    assert main(["convert", "lsp", str(root), "--split", "test", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "im1001.jpg" in err and len(err.strip().splitlines()) == 1
    assert not out.exists(), "nothing half-written"


def test_output_loads_in_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    root = make_lsp_folder(tmp_path / "lsp")
    out = tmp_path / "lsp.json"
    data = convert(root, "lsp", "test", progress=False, numbers=NUMBERS)
    out.write_text(json.dumps(data))
    coco = COCO(str(out))
    assert len(coco.getAnnIds()) == len(NUMBERS)
    assert coco.loadCats(1)[0]["keypoints"] == list(COCO_JOINTS)

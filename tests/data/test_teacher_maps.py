"""Dense teacher targets (issue 29 item 3): the teacher-map store, its warp into augmented
crops, the heads' soft losses, and the store written by MoveNet Thunder on real photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from edgepose.coords import apply_affine, box_to_center_scale, compose_affine, crop_affine, \
    flip_affine
from edgepose.data.teacher_maps import FORMAT, TeacherMaps, grid_affine
from edgepose.errors import DataError, ModelError
from edgepose.metadata import ModelMeta
from edgepose.skeleton import get_skeleton

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "coco"
K = 17


def _bump_store(folder: Path, centres_img: np.ndarray, box=(100.0, 50.0, 120.0, 240.0),
                size=(256, 256), stride=4, sigma=1.2) -> np.ndarray:
    """A store of one person whose map k is a Gaussian bump (peak 0.9) at image point
    ``centres_img[k]``, laid out exactly as the writer lays out Thunder's maps."""
    w, h = size
    c, s = box_to_center_scale(box, w / h, 1.25)
    m = compose_affine(grid_affine(stride), crop_affine(c, s, (w, h)))
    gy, gx = np.mgrid[0:h // stride, 0:w // stride]
    pts = apply_affine(centres_img, m)
    maps = np.stack([0.9 * np.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * sigma ** 2))
                     for x, y in pts])
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "maps.npy", np.round(maps[None] * 255).astype(np.uint8))
    np.save(folder / "affine.npy", m[None])
    np.save(folder / "ann_ids.npy", np.array([7], np.int64))
    (folder / "info.json").write_text(json.dumps({"format": FORMAT, "people": 1}))
    return m


def _peak_input_px(t: np.ndarray, stride: int) -> np.ndarray:
    """(K, h, w) maps -> (K, 2) input px of each map's centre of mass around its argmax."""
    out = []
    for k in range(t.shape[0]):
        y, x = np.unravel_index(int(t[k].argmax()), t[k].shape)
        y0, y1, x0, x1 = max(y - 1, 0), y + 2, max(x - 1, 0), x + 2
        win = t[k, y0:y1, x0:x1]
        yy, xx = np.mgrid[y0:y0 + win.shape[0], x0:x0 + win.shape[1]]
        cx, cy = (win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()
        out.append([(cx + 0.5) * stride - 0.5, (cy + 0.5) * stride - 0.5])
    return np.asarray(out)


@pytest.mark.parametrize("out_size", [64, 128])
@pytest.mark.parametrize("rotation,flip", [(0.0, False), (25.0, False), (-15.0, True)])
def test_warp_follows_the_augmented_crop(tmp_path, out_size, rotation, flip):
    """Each joint's warped map peaks where the same affine puts that joint (within a
    third of a student cell), for scale, rotation and flip; after a flip left and right
    joints swap channels exactly as the labels do."""
    rng = np.random.default_rng(3)
    centres = np.column_stack([rng.uniform(115, 205, K), rng.uniform(70, 270, K)])
    _bump_store(tmp_path / "s.maps", centres)
    store = TeacherMaps(tmp_path / "s.maps", K)
    c, s = box_to_center_scale((100.0, 50.0, 120.0, 240.0), 1.0, 1.25)
    m = crop_affine(c, s * 0.9, (out_size, out_size), rotation)
    perm = get_skeleton("coco17").flip_permutation()
    if flip:
        m = compose_affine(flip_affine(out_size), m)
    t = store.warp(store.row(7), m, (out_size, out_size), 4, perm if flip else None)
    assert t.shape == (K, out_size // 4, out_size // 4) and t.dtype == np.float32
    expect = apply_affine(centres, m)
    if flip:
        expect = expect[perm]
    err = np.linalg.norm(_peak_input_px(t, 4) - expect, axis=1)
    assert err.max() < 4 / 3, err
    # the teacher's confidence survives the area average (without the peak kept it would
    # drop to ~0.25 here); sampling at the student's cell centres still lowers a peak that
    # falls between cells, as with the labels' Gaussian targets
    peaks = t.max(axis=(1, 2))
    assert peaks.max() <= 0.9 + 0.01 and peaks.min() >= 0.45, peaks


def test_a_person_outside_the_teacher_crop_reads_zero(tmp_path):
    _bump_store(tmp_path / "s.maps", np.full((K, 2), 160.0))
    store = TeacherMaps(tmp_path / "s.maps", K)
    far = crop_affine(np.array([2000.0, 2000.0]), np.array([100.0, 100.0]), (64, 64))
    assert store.warp(0, far, (64, 64), 4).max() == 0.0


def test_broken_stores_are_one_line_with_the_fix(tmp_path):
    with pytest.raises(DataError, match="not a teacher-map store.*scripts/teacher_maps.py"):
        TeacherMaps(tmp_path / "none.maps")
    _bump_store(tmp_path / "s.maps", np.full((K, 2), 160.0))
    with pytest.raises(DataError, match="17 joints per map, the model has 12"):
        TeacherMaps(tmp_path / "s.maps", 12)
    np.save(tmp_path / "s.maps" / "ann_ids.npy", np.array([1, 2], np.int64))
    with pytest.raises(DataError, match="disagree"):
        TeacherMaps(tmp_path / "s.maps")
    (tmp_path / "s.maps" / "info.json").write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(DataError, match="format 'other/9'"):
        TeacherMaps(tmp_path / "s.maps")


def test_soft_weight_outside_0_1_is_refused():
    from edgepose.models.heatmap import HeatmapHead

    with pytest.raises(ModelError, match=r"soft_weight must be in \[0, 1\]"):
        HeatmapHead(24, 4, (64, 64), K, neck="separable", width=96, soft_weight=1.5)


def _head(kind: str, w: float):
    from edgepose.models.dsnt import DSNTHead
    from edgepose.models.heatmap import HeatmapHead

    cls = HeatmapHead if kind == "heatmap" else DSNTHead
    extra = {"logits": True} if kind == "heatmap" else {}
    return cls(24, 4, (64, 64), K, neck="separable", width=96, soft_weight=w, **extra)


def _batch(maps: torch.Tensor, mask: float = 1.0) -> dict:
    b = maps.shape[0]
    return {"keypoints": torch.full((b, K, 2), 31.5), "visible": torch.ones(b, K),
            "teacher_maps": maps, "teacher_mask": torch.full((b,), mask)}


def test_heatmap_soft_loss_is_zero_on_the_teachers_own_maps():
    """soft_weight 1: the loss is the QFL to the teacher's maps alone, so logits equal to
    logit(teacher map) give (numerically) zero, and a prediction elsewhere does not."""
    torch.manual_seed(0)
    maps = torch.rand(2, K, 16, 16) * 0.9 + 0.05
    head = _head("heatmap", 1.0)
    loss, parts = head.loss({"heatmaps": torch.logit(maps)}, _batch(maps))
    assert float(loss) < 1e-6 and "soft_qfl" in parts
    off, _ = head.loss({"heatmaps": torch.logit(maps.flip(-1))}, _batch(maps))
    assert float(off) > 100 * max(float(loss), 1e-9)
    # no maps for these people (mask 0): the soft term is 0, the mix keeps (1 - w) x labels
    half = _head("heatmap", 0.5)
    lab, _ = _head("heatmap", 0.0).loss({"heatmaps": torch.logit(maps)}, _batch(maps, 0.0))
    mixed, _ = half.loss({"heatmaps": torch.logit(maps)}, _batch(maps, 0.0))
    assert math.isclose(float(mixed), 0.5 * float(lab), rel_tol=1e-5)


def test_dsnt_soft_js_is_zero_when_the_heatmap_is_the_teachers_distribution():
    from edgepose.models.dsnt import SOFT_FLOOR, dsnt

    maps = torch.zeros(1, K, 16, 16)
    maps[..., 7:10, 5:8] = torch.tensor([[0.2, 0.5, 0.2], [0.5, 0.9, 0.5], [0.2, 0.5, 0.2]])
    q = (maps - SOFT_FLOOR).clamp(min=0)
    q = q / q.sum(dim=(-2, -1), keepdim=True)
    head = _head("dsnt", 1.0)
    out = {"heatmaps": q, "coords_norm": dsnt(q)}
    b = _batch(maps)
    b["keypoints"] = ((dsnt(q) + 1) * 64 - 1) / 2  # labels where the teacher's mass is
    loss, parts = head.loss(out, b)
    assert parts["js"] < 1e-6 and parts["euclidean"] < 1e-5
    # labels only (w = 0): the Gaussian target differs from the teacher's map
    _, lab = _head("dsnt", 0.0).loss(out, b)
    assert lab["js"] > 0.05


def test_sources_with_and_without_maps_batch_together(tmp_path, synth_coco):
    """A config whose sources name maps for some people: every sample carries the fields
    (zeros and mask 0 where a source has none), so mixed batches collate."""
    from edgepose.config import DataConfig
    from edgepose.data.datasets import build_dataset

    data = json.loads(Path(synth_coco.train_json).read_text())
    ann = data["annotations"][0]
    kps = np.asarray(ann["keypoints"], float).reshape(-1, 3)
    _bump_store(tmp_path / "a.maps", np.where(kps[:, 2:] > 0, kps[:, :2], 10.0),
                box=tuple(ann["bbox"]))
    ids = np.load(tmp_path / "a.maps" / "ann_ids.npy")
    ids[0] = ann["id"]
    np.save(tmp_path / "a.maps" / "ann_ids.npy", ids)
    d = DataConfig(sources=[
        {"ann": str(synth_coco.train_json), "images": str(synth_coco.image_root("train")),
         "maps": str(tmp_path / "a.maps")},
        {"ann": str(synth_coco.val_json), "images": str(synth_coco.image_root("val"))}],
        augment=False)
    meta = ModelMeta(head="heatmap", backbone="movenet_lightning", input_size=(64, 64),
                     stride=4, head_cfg={"heatmap_stride": 4})
    ds = build_dataset(d, meta, train=True)
    items = [ds[0], ds[len(ds) - 1]]
    batch = torch.utils.data.default_collate(items)
    assert batch["teacher_maps"].shape == (2, K, 16, 16)
    assert batch["teacher_mask"].tolist() == [1.0, 0.0]
    assert float(batch["teacher_maps"][0].max()) > 0.5 and float(batch["teacher_maps"][1].max()) == 0


def _thunder_missing() -> str | None:
    from test_teacher import teacher_missing  # tests/data is on sys.path

    return teacher_missing(".safetensors")


@pytest.mark.slow
@pytest.mark.skipif(_thunder_missing() is not None, reason=f"{_thunder_missing()}")
def test_thunder_store_on_real_photos_agrees_with_the_teacher_and_resumes(tmp_path):
    """The writer's maps of the committed COCO photos, warped into the student's plain crop,
    peak within one student cell of where the in-process teacher (ONNX Runtime, its own
    decode with offsets) puts each joint it is sure of; a write cut short resumes to the
    same bytes."""
    from edgepose.data.coco import load_coco_samples
    from edgepose.engines.teacher import MoveNetTeacher
    from edgepose.engines.teacher_maps import write_store

    ann = ASSETS / "person_keypoints.json"
    out = write_store(ann, ASSETS, tmp_path / "coco.maps", progress=False, batch=2)
    store = TeacherMaps(out, K)
    samples, _ = load_coco_samples(ann, K)
    assert len(store) == len(samples) >= 4
    errs = []
    with MoveNetTeacher() as t:
        for s in samples:
            lm = t.landmarks(ASSETS / s["file_name"], s["bbox"])
            c, size = box_to_center_scale(s["bbox"], 1.0, 1.25)
            m = crop_affine(c, size, (128, 128))
            maps = store.warp(store.row(s["ann_id"]), m, (128, 128), 4)
            sure = lm[:, 2] >= 0.5
            got = _peak_input_px(maps, 4)[sure]
            errs += list(np.linalg.norm(got - apply_affine(lm[sure, :2], m), axis=1))
    assert len(errs) >= 20
    assert np.median(errs) < 2.0 and np.max(errs) < 4.0 + 1e-6, errs
    first = np.load(out / "maps.npy").copy()
    first_affine = np.load(out / "affine.npy")
    # cut short after two people: progress says 2, the rest is missing, no info.json
    mm = np.load(out / "maps.npy", mmap_mode="r+")
    mm[2:] = 0
    mm.flush()
    del mm
    (out / "info.json").unlink()
    from edgepose.fileio import file_sha256

    (out / "progress.json").write_text(json.dumps({"source": file_sha256(ann),
                                                   "n": len(samples), "done": 2}))
    (out / "affine.npy").unlink()
    with pytest.raises(DataError, match="not a teacher-map store"):
        TeacherMaps(out)
    write_store(ann, ASSETS, out, progress=False, batch=2)
    assert np.array_equal(np.load(out / "maps.npy"), first)
    assert np.array_equal(np.load(out / "affine.npy"), first_affine)
    assert not (out / "progress.json").exists() and TeacherMaps(out, K)


def test_nerpe_soft_targets_are_the_teachers_map_at_each_query():
    """NerPE samples the teacher's map at its query points: a bump at input pixel (20, 41)
    reads its peak at that pixel's normalised coordinate; with soft_weight 1 a head whose
    predictions equal the sampled map has zero loss; a joint nobody labelled but the
    teacher sees joins the loss."""
    from edgepose.coords import pixel_to_norm_xy
    from edgepose.models.nerpe import NerPEHead

    head = NerPEHead(24, 4, (64, 64), K, feat_dim=16, hidden=[16], soft_weight=1.0)
    maps = torch.zeros(1, K, 64, 64)  # maps_stride 1: one cell per input pixel
    maps[0, :, 41, 20] = 0.8
    q = pixel_to_norm_xy(torch.tensor([[[20.0, 41.0], [30.0, 10.0]]]), 64, 64)  # (1, 2, 2)
    b = {"keypoints": torch.full((1, K, 2), 5.0), "visible": torch.zeros(1, K),
         "teacher_maps": maps, "teacher_mask": torch.ones(1)}
    b["visible"][0, 0] = 1.0
    target, seen = head._soft_targets(q, b, head.targets(q, b), b["visible"] > 0)
    assert torch.allclose(target[0, 0], torch.full((K,), 0.8)) and float(target[0, 1].max()) == 0
    assert bool(seen.all()), "every joint the teacher sees is trained"
    preds = target[:, None].expand(1, 4, 2, K).clone()
    loss, _ = head.loss({"queries": q, "preds": preds, "weights": torch.full((1, 4, 2), 0.25)}, b)
    assert float(loss) < 1e-12
    with pytest.raises(ModelError, match="soft_weight must be in"):
        NerPEHead(24, 4, (64, 64), K, feat_dim=16, hidden=[16], soft_weight=-0.1)

"""The dataset factory: a :class:`~edgepose.config.DataConfig` -> the top-down COCO or MPII
dataset of its train or val split. ``edgepose train`` and ``edgepose eval`` both build
their data here, so a config and the evaluator cannot disagree on what a split is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepose.errors import DataError
from edgepose.metadata import ModelMeta


def build_dataset(d: Any, meta: ModelMeta, train: bool):
    """The COCO or MPII top-down dataset for the train or val split (None if no val set).
    ``d`` is a :class:`edgepose.config.DataConfig` (not imported: the config layer sits
    above the data layer, see pyproject's import contract).

    With ``data.sources`` the training set is a ConcatDataset of one CocoKeypoints per
    source (people of images seen in an earlier source dropped; a source's ``maps``
    store gives its people dense teacher targets, :mod:`edgepose.data.teacher_maps`); its ``source_sizes``
    and ``source_weights`` attributes feed :class:`edgepose.distributed.WeightedEpochSampler`.
    """
    from edgepose.data.transforms import AugConfig

    aug = AugConfig(**d.aug) if train and d.augment else None
    if train and d.sources:
        return _multi_source(d, meta, aug)
    ann, root = (d.train_ann, d.train_images) if train else (d.val_ann, d.val_images)
    if not ann:
        if train:
            raise DataError("no training annotations: set data.train_ann (or data.sources) "
                            "in the config")
        return None
    where = "train" if train else "val"
    _check_paths(ann, root, f"data.{where}_ann", f"data.{where}_images")
    if d.dataset == "mpii":
        from edgepose.data.mpii import MpiiKeypoints

        return MpiiKeypoints(ann, root, meta, train=aug is not None, aug=aug,
                             headboxes_mat=(d.headboxes or None) if not train else None)
    from edgepose.data.coco import CocoKeypoints

    return CocoKeypoints(ann, root, meta, train=aug is not None, aug=aug)


def _check_paths(ann: str, root: str, ann_key: str, root_key: str) -> None:
    if not Path(ann).is_file():
        raise DataError(f"{ann}: annotation file not found; check {ann_key} in the config")
    if root and not Path(root).is_dir():
        raise DataError(f"{root}: image folder not found; check {root_key} in the config")


def _multi_source(d: DataConfig, meta: ModelMeta, aug):
    from torch.utils.data import ConcatDataset

    from edgepose.data.coco import CocoKeypoints
    from edgepose.data.teacher_maps import TeacherMaps

    parts, weights, seen = [], [], set()
    with_maps = any(src.get("maps") for src in d.sources)
    maps_stride = int(d.maps_stride or meta.head_cfg.get("heatmap_stride", 4))
    for i, src in enumerate(d.sources):
        ann, root = str(src["ann"]), str(src.get("images", ""))
        _check_paths(ann, root, f"data.sources[{i}].ann", f"data.sources[{i}].images")
        ds = CocoKeypoints(ann, root or Path(ann).parent, meta, train=aug is not None, aug=aug)
        keys = {(s["image_id"], s["file_name"]) for s in ds.samples}
        ds.samples = [s for s in ds.samples if (s["image_id"], s["file_name"]) not in seen]
        seen |= keys
        if with_maps:  # every source returns the fields, so batches mix sources
            store = TeacherMaps(src["maps"], meta.num_joints) if src.get("maps") else None
            ds.use_teacher_maps(store, maps_stride)
        if ds.samples:
            parts.append(ds)
            weights.append(float(src.get("weight", 1.0)))
    if not parts:
        raise DataError("data.sources: no person with a labelled joint in any source")
    out = ConcatDataset(parts)
    out.source_sizes = [len(p) for p in parts]
    out.source_weights = weights
    return out

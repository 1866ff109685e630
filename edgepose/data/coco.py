"""COCO person-keypoint top-down dataset (real COCO and the synthetic one alike).

One sample per person annotation that is not a crowd and has at least one labelled
keypoint. The person box becomes a crop centre and size (``box_to_center_scale``, padding
``CROP_PADDING`` = 1.25, grown to the model's aspect ratio); training adds scale / rotation /
flip (and optionally half-body) augmentation folded into one affine matrix
(:mod:`edgepose.data.transforms`).

Keypoints are read as stored. The synthetic data uses the edgepose convention (pixel
centres on integers); real COCO annotations are used the same way, as every common
top-down codebase does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.coords import CROP_PADDING, box_to_center_scale
from edgepose.data.files import read_image, read_json, require  # noqa: F401 (re-export)
from edgepose.data.crop_samples import TopDownDataset
from edgepose.data.transforms import AugConfig
from edgepose.errors import DataError
from edgepose.metadata import ModelMeta


def load_coco_samples(ann_file, num_joints: int) -> tuple[list[dict], dict[int, dict]]:
    """Validate a COCO keypoint JSON; return (person samples, images by id)."""
    data = read_json(ann_file, "COCO annotation file")
    src = str(ann_file)
    hint = "; is this a COCO person_keypoints file?"
    require(data, ("images", "annotations"), src, hint)
    images: dict[int, dict] = {}
    for i, im in enumerate(data["images"]):
        require(im, ("id", "file_name"), f"{src}: images[{i}]", hint)
        images[int(im["id"])] = im
    samples = []
    for i, ann in enumerate(data["annotations"]):
        where = f"{src}: annotations[{i}]"
        require(ann, ("image_id", "keypoints", "bbox"), where, hint)
        if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1:
            continue
        kps = np.asarray(ann["keypoints"], dtype=np.float64)
        if kps.size != 3 * num_joints:
            raise DataError(f"{where} has {kps.size} keypoint values; expected "
                            f"{3 * num_joints} (x, y, v for {num_joints} joints)")
        kps = kps.reshape(num_joints, 3)
        if not np.any(kps[:, 2] > 0):
            continue
        image = images.get(int(ann["image_id"]))
        if image is None:
            raise DataError(f"{where} refers to image_id {ann['image_id']}, which is not in "
                            "'images'")
        box = [float(v) for v in ann["bbox"]]
        if len(box) != 4:
            raise DataError(f"{where} has a bbox of {len(box)} numbers; expected [x, y, w, h]")
        if "width" in image and "height" in image:  # clip to the image, as COCO tools do
            x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
            x1 = min(box[0] + max(box[2], 0.0), float(image["width"]))
            y1 = min(box[1] + max(box[3], 0.0), float(image["height"]))
            box = [x0, y0, x1 - x0, y1 - y0]
        if box[2] <= 0 or box[3] <= 0:
            continue
        samples.append({
            "image_id": int(ann["image_id"]), "ann_id": int(ann.get("id", i)),
            "file_name": image["file_name"], "keypoints": kps, "bbox": box,
            "area": float(ann.get("area", box[2] * box[3])),
        })
    return samples, images


class CocoKeypoints(TopDownDataset):
    """Top-down COCO keypoint dataset; see :class:`TopDownDataset` for the sample dict.

    ``ann_file``: a COCO ``person_keypoints_*.json``; ``image_root``: the folder its
    ``file_name`` entries are relative to. ``meta`` gives the crop size, normalisation and
    joint set (its skeleton must match the file's keypoint count); ``train`` turns on
    ``aug`` (default :class:`AugConfig`).
    """

    def __init__(self, ann_file, image_root, meta: ModelMeta, train: bool = False,
                 aug: AugConfig | None = None, padding: float = CROP_PADDING):
        super().__init__(image_root, meta, train, aug, padding)
        self.ann_file = Path(ann_file)
        samples, self.images = load_coco_samples(self.ann_file, meta.num_joints)
        w, h = self.output_wh
        for s in samples:
            s["center"], s["size"] = box_to_center_scale(s["bbox"], w / h, self.padding)
        self.samples = samples

"""The real-people evaluation sets, as lists of labelled person boxes.

* LSP test (``im1001-im2000``, never trained on): 12 limb joints, box around the labelled
  joints (what ``edgepose convert`` writes), metric PCK@0.2 with the torso normaliser.
* COCO val subsets (``coco-mini`` + ``tiny-coco`` ``val2017``, de-duplicated by image id):
  17 joints, the annotated person boxes, metrics OKS AP (pycocotools) and PCK@0.1 of the
  box's longer side.

Both read ``../shared/data`` (see its README); ``root`` points elsewhere if needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import DataError

DEFAULT_ROOT = Path("../shared/data")
COCO_VAL = ("coco-mini", "tiny-coco")


@dataclass
class LabelledPerson:
    """One ground-truth person: ``image`` path, ``box`` [x, y, w, h] px, ``keypoints``
    (17, 3) [x, y, v] px (edgepose convention), COCO ``image_id`` / ``ann_id`` / ``area``."""

    image: Path
    box: np.ndarray
    keypoints: np.ndarray
    image_id: int
    ann_id: int
    area: float


def people_from_coco(data: dict[str, Any], image_root: Path) -> list[LabelledPerson]:
    """Non-crowd people with at least one labelled joint of a COCO keypoint dict."""
    images = {im["id"]: im for im in data["images"]}
    out = []
    for a in data["annotations"]:
        kps = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        if a.get("iscrowd", 0) or not (kps[:, 2] > 0).any():
            continue
        im = images[a["image_id"]]
        out.append(LabelledPerson(Path(image_root) / im["file_name"],
                                  np.asarray(a["bbox"], dtype=np.float64), kps,
                                  int(a["image_id"]), int(a["id"]), float(a.get("area", 0))))
    return out


def lsp_test(root: Path = DEFAULT_ROOT, limit: int = 0) -> list[LabelledPerson]:
    """LSP's test half as labelled people (converted on the fly from ``joints.mat``)."""
    from edgepose.data.lsp import convert

    lsp = Path(root) / "lsp"
    if not (lsp / "joints.mat").is_file():
        raise DataError(f"{lsp}: LSP not found (joints.mat); pass the folder of shared/data")
    numbers = list(range(1001, 1001 + limit)) if limit else None
    data = convert(lsp, "lsp", "test", progress=False, numbers=numbers)
    return people_from_coco(data, lsp / "images")


def coco_val(root: Path = DEFAULT_ROOT, limit: int = 0) -> tuple[list[LabelledPerson], dict]:
    """People of the COCO val subsets, and the merged ground-truth COCO dict (for
    pycocotools; file names made relative to ``root``)."""
    images, anns, seen = [], [], set()
    cats = None
    for sub in COCO_VAL:
        path = Path(root) / sub / "annotations" / "person_keypoints_val2017.json"
        if not path.is_file():
            raise DataError(f"{path}: COCO val subset not found; pass the folder of shared/data")
        d = json.loads(path.read_text())
        cats = d["categories"]
        new = {im["id"] for im in d["images"]} - seen
        seen |= new
        for im in d["images"]:
            if im["id"] in new:
                images.append({**im, "file_name": f"{sub}/val2017/{im['file_name']}"})
        anns += [a for a in d["annotations"] if a["image_id"] in new]
    gt = {"images": images, "annotations": anns, "categories": cats}
    people = people_from_coco(gt, Path(root))
    if limit:
        people = people[:limit]
    return people, gt

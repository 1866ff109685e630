"""``edgepose eval``: accuracy of a checkpoint (or exported model) on a labelled dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="measure PCK / pixel error / COCO AP of a model on a dataset",
        description="Evaluate a model on a COCO- or MPII-format keypoint dataset: mean error "
                    "in original-image pixels, PCK@0.05/0.1 (normalised by max(w, h) of the "
                    "GT box), PCKh@0.5/0.1 (MPII) and COCO OKS AP/AR via pycocotools (COCO).")
    p.add_argument("model", help="checkpoint (.pt) or exported model (.onnx/.engine)")
    p.add_argument("--data", required=True, help="annotation file (COCO keypoints JSON / MPII)")
    p.add_argument("--images", required=True, help="image folder")
    p.add_argument("--dataset", choices=("auto", "coco", "mpii"), default="auto",
                   help="annotation format: a COCO keypoints JSON (object) or the common "
                        "MPII JSON (a list of records); auto tells them apart (default)")
    p.add_argument("--headboxes", metavar="gt_valid.mat",
                   help="MPII: the official gt_valid.mat, for PCKh (head-size normaliser); "
                        "without it MPII is scored with PCK of the person box")
    p.add_argument("--boxes", metavar="detector|DETS.json",
                   help="COCO: evaluate the whole top-down system - person boxes from the "
                        "bundled detector ('detector') or a COCO detection results file "
                        "(image_id, bbox, score) instead of the ground-truth boxes; OKS AP "
                        "over every image of --data. People are ranked by box score x mean "
                        "joint score and de-duplicated by OKS NMS, as predict --multi does")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="cpu", help="cpu or cuda (for .pt checkpoints)")
    p.add_argument("--json", metavar="OUT", help="write the metrics as JSON here")
    p.add_argument("--coco-results", metavar="RES", help="write COCO keypoint results JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _load(path: str, device: str):
    """(backend, meta) for any model file: checkpoint (torch backend), ONNX or engine."""
    from edgepose.engines.backend import load_backend

    backend = load_backend(path, device=device)  # a missing file / unknown name: one line
    return backend, backend.meta


def run(args) -> int:
    from pathlib import Path

    from edgepose.config import DataConfig
    from edgepose.evaluate import evaluate_model, format_table
    from edgepose.data.datasets import build_dataset

    from edgepose.errors import DataError

    if not Path(args.data).is_file():  # local inputs first, before the model is loaded
        raise DataError(f"--data {args.data}: annotation file not found")
    if not Path(args.images).is_dir():
        raise DataError(f"--images {args.images}: image folder not found")
    if args.boxes:
        return eval_with_boxes(args)
    dataset_kind = args.dataset
    if dataset_kind == "auto":
        from edgepose.data.files import read_json

        dataset_kind = "mpii" if isinstance(read_json(args.data), list) else "coco"
    if args.headboxes and dataset_kind != "mpii":
        raise DataError("--headboxes is for MPII annotations (PCKh); this is a COCO file")
    model, meta = _load(args.model, args.device)
    d = DataConfig(dataset=dataset_kind, val_ann=args.data, val_images=args.images,
                   augment=False, headboxes=args.headboxes or "")
    dataset = build_dataset(d, meta, train=False)
    metrics = evaluate_model(
        model, dataset, batch_size=args.batch_size, workers=args.workers,
        coco_ann=args.data if dataset_kind == "coco" else None,
        coco_results_path=args.coco_results, json_path=args.json,
        progress=not args.no_progress)
    norm = (f"PCKh: head size from {args.headboxes or 'the records head_box'}"
            if "pckh@0.5" in metrics else "PCK: longer side of the person box")
    print(format_table(metrics, title=f"{Path(args.model).name} on {args.data} "
                                      f"({dataset_kind}; {norm})"))
    return 0


def detection_boxes(source: str, images: list[dict], image_root: Path):
    """(image id -> (boxes xywh (N, 4), scores (N,)), crop padding, hide_from) from the
    detector (its measured padding; its confident people hidden in each other's crops, as
    ``predict --multi`` does) or a results file (the pose crops' default padding; nobody
    hidden: a file's score scale is unknown)."""
    import cv2
    import numpy as np

    from edgepose.errors import DataError

    out = {}
    if source == "detector":
        from edgepose.engines.detector import Detector

        det = Detector(threads=1, offline=True)
        for im in images:
            img = cv2.imread(str(image_root / im["file_name"]))
            if img is None:
                raise DataError(f"{image_root / im['file_name']}: image missing or unreadable")
            out[int(im["id"])] = det(img)
        return out, det.crop_padding, det.live_threshold
    from edgepose.data.files import read_json

    if not Path(source).is_file():
        raise DataError(f"--boxes {source}: not 'detector' and no such detection results file")
    dets = read_json(source, "detection results file")
    if not isinstance(dets, list) or any(not {"image_id", "bbox"} <= set(d) for d in dets):
        raise DataError(f"--boxes {source}: expected COCO detection results, a list of "
                        "{image_id, bbox, score}")
    for im in images:
        mine = [d for d in dets if int(d["image_id"]) == int(im["id"])
                and d.get("category_id", 1) == 1]
        out[int(im["id"])] = (np.array([d["bbox"] for d in mine], float).reshape(-1, 4),
                              np.array([d.get("score", 1.0) for d in mine], float))
    from edgepose.coords import CROP_PADDING

    return out, CROP_PADDING, float("inf")


def eval_with_boxes(args) -> int:
    """Top-down COCO evaluation with detected (not ground-truth) person boxes."""
    import json

    import cv2

    from edgepose.app.api import load
    from edgepose.data.files import read_json, require
    from edgepose.errors import DataError
    from edgepose.evaluate import coco_keypoint_ap
    from edgepose.topdown import PersonBoxes

    data = read_json(args.data, "COCO annotation file")
    if not isinstance(data, dict):
        raise DataError("--boxes works with COCO keypoint files (not MPII)")
    require(data, ("images", "annotations"), str(args.data))
    root = Path(args.images)
    boxes, padding, hide_from = detection_boxes(args.boxes, data["images"], root)
    model = load(args.model, device=args.device)
    results = []
    for im in data["images"]:
        b, s = boxes[int(im["id"])]
        if len(b) == 0:
            continue
        img = cv2.imread(str(root / im["file_name"]))
        # the top-down finish (edgepose.topdown): score = detector x keypoint confidence, OKS NMS
        people = model.predict(img, boxes=PersonBoxes.from_detections(b, s, padding,
                                                                       hide_from))
        for pose in people:
            results.append({"image_id": int(im["id"]), "category_id": 1, **pose.to_dict()})
    if args.coco_results:
        Path(args.coco_results).write_text(json.dumps(results))
    ids = [int(im["id"]) for im in data["images"]]
    metrics = coco_keypoint_ap(args.data, results, image_ids=ids) if results else \
        {"AP": 0.0}
    metrics["people_detected"] = len(results)
    metrics["people_labelled"] = sum(1 for a in data["annotations"]
                                     if not a.get("iscrowd") and a.get("num_keypoints", 0))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
    from edgepose.evaluate import format_table

    src = "the bundled detector" if args.boxes == "detector" else args.boxes
    print(format_table(metrics, title=f"{Path(args.model).name} on {args.data} "
                                      f"(boxes from {src})"))
    return 0

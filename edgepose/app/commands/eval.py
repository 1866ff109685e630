"""``edgepose eval``: accuracy of a checkpoint (or exported model) on a labelled dataset."""

from __future__ import annotations

import argparse


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
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="cpu", help="cpu or cuda (for .pt checkpoints)")
    p.add_argument("--json", metavar="OUT", help="write the metrics as JSON here")
    p.add_argument("--coco-results", metavar="RES", help="write COCO keypoint results JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _load(path: str, device: str):
    """(callable model, meta) for a checkpoint or any artifact the engines package loads."""
    from pathlib import Path

    from edgepose.errors import ModelError

    if not Path(path).is_file():
        raise ModelError(f"{path}: model file not found")
    if path.endswith(".pt"):
        from edgepose.checkpoint import load_model
        from edgepose.distributed import torch_device

        dev = torch_device(device)  # checked before the model is loaded
        model, meta = load_model(path)
        return model.to(dev), meta
    from edgepose.engines import load_backend  # ONNX Runtime / TensorRT, chosen by suffix

    backend = load_backend(path, device=device)
    return backend, backend.meta


def run(args) -> int:
    from pathlib import Path

    from edgepose.config import DataConfig
    from edgepose.evaluate import evaluate_model, format_table
    from edgepose.train import build_dataset

    from edgepose.errors import DataError

    if not Path(args.data).is_file():  # local inputs first, before the model is loaded
        raise DataError(f"--data {args.data}: annotation file not found")
    if not Path(args.images).is_dir():
        raise DataError(f"--images {args.images}: image folder not found")
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

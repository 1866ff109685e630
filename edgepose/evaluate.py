"""Evaluation: pixel error, PCK, PCKh and COCO OKS AP, plus a runner over a dataset.

All metric functions are pure numpy. Coordinates follow ``edgepose/coords.py`` (pixel centres
on integers). Errors are measured in the ORIGINAL image: predictions come out of a model in
crop (input) pixels and are mapped back with the inverse of the sample's 2x3 image->crop
affine before any distance is taken, so a 64x64 and a 256x256 model are compared in the
same units.

Normalisers (stated once, used everywhere):

* PCK@a: a joint is correct when its error <= a * max(w, h) of the person's GT bbox.
* PCKh@a (MPII): a joint is correct when its error <= a * head_size (the MPII head box
  diagonal * 0.6, as the dataset provides it).
* OKS AP: pycocotools' COCOeval (:func:`coco_keypoint_ap`), the skeleton's sigmas and the
  GT ``area``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgepose.errors import DataError
from edgepose.topdown import crop_to_image


# ----------------------------------------------------------------------------- geometry


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(B, K, 2), (B, K, 2) pixels -> (B, K) Euclidean distances in pixels."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def mean_pixel_error(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray) -> float:
    """Mean distance (pixels) over joints with ``visible`` > 0; NaN when none are visible."""
    vis = np.asarray(visible) > 0
    if not vis.any():
        return float("nan")
    return float(joint_errors(pred, gt)[vis].mean())


def bbox_normaliser(bbox_xywh: np.ndarray) -> np.ndarray:
    """(B, 4) COCO boxes -> (B,) PCK normaliser = max(w, h) in pixels."""
    b = np.asarray(bbox_xywh, dtype=np.float64).reshape(-1, 4)
    return np.maximum(b[:, 2], b[:, 3])


def pck_hits(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray, alpha: float
) -> tuple[int, int]:
    """(correct, counted) joints: error <= alpha * norm[b], over joints with visible > 0."""
    vis = np.asarray(visible) > 0
    thr = alpha * np.asarray(norm, dtype=np.float64).reshape(-1, 1)
    ok = (joint_errors(pred, gt) <= thr) & vis
    return int(ok.sum()), int(vis.sum())


def pck(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray,
        alpha: float) -> float:
    """Fraction of visible joints within ``alpha * norm`` (per-sample ``norm``, pixels)."""
    hit, n = pck_hits(pred, gt, visible, norm, alpha)
    return hit / n if n else float("nan")


def torso_size(kps: np.ndarray) -> float | None:
    """LSP's torso normaliser on COCO-17 [x, y, v] (K, 3): the mean of the left-shoulder to
    right-hip and right-shoulder to left-hip distances that are labelled; None if neither."""
    d = [float(np.linalg.norm(kps[a, :2] - kps[b, :2]))
         for a, b in ((5, 12), (6, 11)) if kps[a, 2] > 0 and kps[b, 2] > 0]
    return float(np.mean(d)) if d else None


LSP_LIMBS = tuple(range(5, 17))  # COCO-17 indices of LSP's 12 limb joints


def torso_pck_hits(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.2
                   ) -> tuple[np.ndarray, np.ndarray]:
    """LSP's PCK with the torso normaliser: per joint (K,) hits and (K,) counts over people
    (N, K, 2) ``pred`` vs (N, K, 3) ``gt`` [x, y, v]; people without a labelled torso are
    skipped, NaN predictions are misses. Sum ``LSP_LIMBS`` for the 12-limb-joint score."""
    gt = np.asarray(gt, dtype=np.float64)
    hits, counts = np.zeros(gt.shape[1]), np.zeros(gt.shape[1])
    for c, g in zip(np.asarray(pred, dtype=np.float64), gt):
        torso = torso_size(g)
        if not torso:
            continue
        lab = g[:, 2] > 0
        err = np.nan_to_num(np.linalg.norm(c - g[:, :2], axis=1), nan=np.inf)
        hits += (err <= alpha * torso) & lab
        counts += lab
    return hits, counts


def torso_pck(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.2,
              joints=LSP_LIMBS) -> float:
    """LSP's PCK@``alpha`` (torso normaliser, :func:`torso_pck_hits`) of (N, K, 2) ``pred``
    against (N, K, 3) ``gt`` [x, y, v], over ``joints`` (default LSP's 12 limb joints)."""
    hits, counts = torso_pck_hits(pred, gt, alpha)
    j = list(joints)
    return float(hits[j].sum() / max(counts[j].sum(), 1))


def teacher_agreement(pred: np.ndarray, reference: np.ndarray, boxes: np.ndarray,
                      alphas: tuple[float, ...] = (0.05, 0.1)) -> dict[str, float]:
    """Agreement with a reference model (``edgepose adapt``'s teacher): PCK@alpha of the
    person box's longer side (:func:`bbox_normaliser`) of (N, K, 2) ``pred`` against
    (N, K, 3) ``reference`` [x, y, v], over the joints the reference labels (v > 0), people
    in (N, 4) xywh ``boxes``. ``{"people": N, "pck@0.05": .., "pck@0.1": ..}``; the PCKs
    are NaN when there is nobody."""
    if len(pred) == 0:
        return {**{f"pck@{a:g}": float("nan") for a in alphas}, "people": 0}
    ref = np.asarray(reference, dtype=np.float64)
    norm = bbox_normaliser(np.asarray(boxes))
    out: dict[str, float] = {"people": len(pred)}
    for alpha in alphas:
        hit, n = pck_hits(pred, ref[..., :2], ref[..., 2], norm, alpha)
        out[f"pck@{alpha:g}"] = hit / max(n, 1)
    return out


def pckh(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_size: np.ndarray,
         alpha: float = 0.5) -> float:
    """MPII PCKh@alpha: PCK with the per-sample head size as the normaliser."""
    return pck(pred, gt, visible, head_size, alpha)


# ----------------------------------------------------------------------------- COCO OKS AP


def coco_results(
    image_ids, coords_image: np.ndarray, scores: np.ndarray, category_id: int = 1
) -> list[dict[str, Any]]:
    """Standard COCO keypoint results: one dict per person.

    ``coords_image`` (N, K, 2) image pixels, ``scores`` (N, K) in [0, 1]. The person score
    is the mean joint score.
    """
    out = []
    for img_id, xy, s in zip(image_ids, np.asarray(coords_image), np.asarray(scores)):
        kp = np.concatenate([xy, np.asarray(s).reshape(-1, 1)], axis=1).reshape(-1)
        out.append({
            "image_id": int(img_id), "category_id": int(category_id),
            "keypoints": [round(float(v), 3) for v in kp], "score": float(np.mean(s)),
        })
    return out


COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_keypoint_ap(ann_file: str | Path, results: list[dict[str, Any]] | str | Path,
                     image_ids=None, sigmas=None) -> dict[str, float]:
    """Run pycocotools COCOeval(iouType='keypoints'); returns AP, AP50, AP75, APm, APl, AR...

    ``results`` is a list of result dicts or a results JSON path. ``image_ids`` restricts the
    evaluation (default: the images that have results). ``sigmas`` overrides COCO's.
    """
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise DataError(f"{ann_file}: annotation file not found; pass the COCO keypoints JSON")
    if not isinstance(results, list):
        results = json.loads(Path(results).read_text())
    if not results:
        raise DataError("no predictions to evaluate (empty results)")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ids = image_ids if image_ids is not None else sorted({r["image_id"] for r in results})
        ev.params.imgIds = [int(i) for i in ids]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(COCO_STAT_NAMES, ev.stats)}


# ----------------------------------------------------------------------------- runner


def _predict_batch(model, images) -> tuple[np.ndarray, np.ndarray]:
    """Run a PoseModel (training's validation) or a backend callable on one batch (an
    engines Backend takes any batch size and fits it to its own batch range)."""
    if hasattr(model, "predict_numpy"):
        out = model.predict_numpy(images)
        return out["coords"], out["scores"]
    x = np.ascontiguousarray(images.numpy() if hasattr(images, "numpy") else images,
                             dtype=np.float32)
    out = model(x)
    return np.asarray(out["coords"]), np.asarray(out["scores"])


def collect_predictions(model: Callable, loader, progress: bool = True) -> dict[str, np.ndarray]:
    """Run ``model`` over a DataLoader of dataset samples; returns stacked numpy arrays.

    Keys: ``pred`` / ``gt`` (N, K, 2) image pixels (``gt`` from the sample's
    ``keypoints_image`` when present, else its crop keypoints mapped back),
    ``pred_crop`` (N, K, 2) input pixels,
    ``scores``, ``visible`` (N, K), ``bbox`` (N, 4), ``image_id``, ``area``, ``head_size``
    (N,) (head_size NaN when the dataset has none).
    """
    from tqdm import tqdm

    import torch

    was_training = isinstance(model, torch.nn.Module) and model.training
    if was_training:
        model.eval()
    parts: dict[str, list] = {k: [] for k in
                              ("pred", "gt", "pred_crop", "scores", "visible", "bbox",
                               "image_id", "area", "head_size")}
    for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
        coords, scores = _predict_batch(model, batch["image"])
        aff = np.asarray(batch["affine"], dtype=np.float64)
        parts["pred_crop"].append(coords)
        parts["pred"].append(crop_to_image(coords, aff))
        if "keypoints_image" in batch:  # exact GT [x, y, v] in image px, labelled = v > 0
            kpi = np.asarray(batch["keypoints_image"], dtype=np.float64)
            parts["gt"].append(kpi[..., :2])
            parts["visible"].append((kpi[..., 2] > 0).astype(np.float32))
        else:  # crop-space GT mapped back; visible = labelled and inside the crop
            parts["gt"].append(crop_to_image(np.asarray(batch["keypoints"]), aff))
            parts["visible"].append(np.asarray(batch["visible"]))
        parts["scores"].append(scores)
        parts["bbox"].append(np.asarray(batch["bbox"], dtype=np.float64).reshape(-1, 4))
        n = coords.shape[0]
        parts["image_id"].append(np.asarray(batch.get("image_id", np.zeros(n))).reshape(-1))
        parts["area"].append(np.asarray(batch.get("area", np.full(n, np.nan)),
                                        dtype=np.float64).reshape(-1))
        parts["head_size"].append(np.asarray(batch.get("head_size", np.full(n, np.nan)),
                                             dtype=np.float64).reshape(-1))
    if was_training:
        model.train()
    if not parts["pred"]:
        raise DataError("the evaluation dataset is empty")
    return {k: np.concatenate(v) for k, v in parts.items()}


def metrics_from_predictions(p: dict[str, np.ndarray]) -> dict[str, float]:
    """Pixel error + PCK@0.05/0.1 (bbox) + PCKh@0.5/0.1 (when head sizes exist)."""
    norm = bbox_normaliser(p["bbox"])
    out = {
        "num_samples": int(len(p["pred"])),
        "mean_px_error": mean_pixel_error(p["pred"], p["gt"], p["visible"]),
        "pck@0.05": pck(p["pred"], p["gt"], p["visible"], norm, 0.05),
        "pck@0.1": pck(p["pred"], p["gt"], p["visible"], norm, 0.1),
    }
    if np.isfinite(p["head_size"]).all():
        out["pckh@0.5"] = pckh(p["pred"], p["gt"], p["visible"], p["head_size"], 0.5)
        out["pckh@0.1"] = pckh(p["pred"], p["gt"], p["visible"], p["head_size"], 0.1)
    return out


def evaluate_model(
    model: Callable, dataset, batch_size: int = 32, workers: int = 0,
    coco_ann: str | Path | None = None, coco_results_path: str | Path | None = None,
    json_path: str | Path | None = None, progress: bool = True,
) -> dict[str, float]:
    """Run a torch model or backend over ``dataset`` and compute every metric that applies.

    ``model``: a PoseModel, or any callable mapping a float32 numpy (B, 3, H, W) batch to
    ``{"coords": (B, K, 2) input px, "scores": (B, K)}`` (an engines Backend, which fits
    each batch to its own ``batch_range``). COCO AP is computed when ``coco_ann`` (or
    ``dataset.ann_file`` for a COCO dataset) is given.
    """
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=max(1, batch_size), shuffle=False,
                        num_workers=workers)
    p = collect_predictions(model, loader, progress)
    metrics = metrics_from_predictions(p)
    if coco_ann is None and hasattr(dataset, "ann_file") \
            and "head_size" not in getattr(dataset, "extra_fields", ()):
        coco_ann = dataset.ann_file
    if coco_ann is not None:
        res = coco_results(p["image_id"], p["pred"], p["scores"])
        if coco_results_path is not None:
            Path(coco_results_path).parent.mkdir(parents=True, exist_ok=True)
            Path(coco_results_path).write_text(json.dumps(res))
        metrics.update(coco_keypoint_ap(coco_ann, res, sorted({int(i) for i in p["image_id"]})))
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(metrics, indent=2))
    return metrics


def format_table(metrics: dict[str, float], title: str = "") -> str:
    """Plain aligned two-column text table of a metrics dict."""
    rows = [(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in metrics.items()]
    w = max(len(k) for k, _ in rows) if rows else 0
    lines = [title] if title else []
    lines += [f"{k:<{w}}  {v:>10}" for k, v in rows]
    return "\n".join(lines)

"""Step 5: before / after. Agreement with the teacher on the held-out people (and the fit
on training frames), PCK@0.2 (torso) on a labelled real set to show what was forgotten,
and batch-1 latency of both files. The metrics are :mod:`edgepose.evaluate`'s
(:func:`~edgepose.evaluate.teacher_agreement`, :func:`~edgepose.evaluate.torso_pck`), the
predictions :class:`edgepose.app.api.PoseEstimator`'s, the latency the one timing harness's
(:func:`edgepose.calibration.int8_report.measure_latency`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgepose.app.adapting.options import AdaptOptions, split_pair


def agreement(model_path: Path, data: dict[str, Any], root: Path,
              threads: int) -> dict[str, float]:
    """:func:`edgepose.evaluate.teacher_agreement` of a model on the people of a teacher
    COCO dict (their detector boxes), images under ``root``."""
    import cv2

    from edgepose.app.api import load
    from edgepose.evaluate import teacher_agreement

    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    files = {im["id"]: root / im["file_name"] for im in data["images"]}
    preds, refs, boxes = [], [], []
    with load(model_path, device="cpu", threads=threads) as model:
        for image_id, anns in by_image.items():
            img = cv2.imread(str(files[image_id]), cv2.IMREAD_COLOR)
            poses = model.predict(img, [a["bbox"] for a in anns])
            for a, pose in zip(anns, poses):
                preds.append(pose.keypoints)
                refs.append(np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3))
                boxes.append(a["bbox"])
    return teacher_agreement(np.asarray(preds), np.asarray(refs), np.asarray(boxes))


def forgetting_set(spec: str, limit: int = 0):
    """Labelled real people to measure forgetting on: ``auto`` = LSP test where
    ``../shared/data`` has it (else None), ``none``, or ``ANN.json:IMAGES`` (COCO)."""
    from edgepose.data.real_sets import DEFAULT_ROOT, lsp_test, people_from_coco

    if spec == "none":
        return None, "none"
    if spec == "auto":
        if not (DEFAULT_ROOT / "lsp" / "joints.mat").is_file():
            return None, "none (LSP test not found at ../shared/data/lsp; pass --check)"
        return lsp_test(DEFAULT_ROOT, limit), f"LSP test ({limit or 1000} people)"
    ann, images = split_pair(spec, "--check")
    from edgepose.data.files import read_json

    people = people_from_coco(read_json(ann, "--check annotation file"), Path(images))
    return (people[:limit] if limit else people), f"{ann}"


def forgetting(model_path: Path, people, threads: int) -> float:
    """:func:`edgepose.evaluate.torso_pck` (PCK@0.2, LSP's 12 limb joints) of a model on
    labelled people (each cropped by its own box)."""
    import cv2

    from edgepose.app.api import load
    from edgepose.evaluate import torso_pck

    cache: dict[Path, np.ndarray] = {}
    with load(model_path, device="cpu", threads=threads) as model:
        images = [cache.setdefault(p.image, cv2.imread(str(p.image))) for p in people]
        poses = model.predict_many(images, [[p.box] for p in people])
    coords = np.stack([ps[0].keypoints for ps in poses])
    return torso_pck(coords, np.stack([p.keypoints for p in people]), 0.2)


def before_after(opts: AdaptOptions, before: Path, after: Path, hold_data: dict, root: Path,
                 log: Callable, train_data: dict | None = None) -> dict[str, Any]:
    """The report rows of both models (logged as :func:`format_report`'s table)."""
    from edgepose.calibration.int8_report import ReportConfig, measure_latency

    rows: dict[str, Any] = {"before": {"model": str(before)}, "after": {"model": str(after)}}
    for k, path in (("before", before), ("after", after)):
        if hold_data["annotations"]:
            rows[k]["teacher_agreement"] = agreement(path, hold_data, root, opts.threads)
        if train_data and train_data["annotations"]:  # how well it fits what it saw
            rows[k]["train_agreement"] = agreement(path, train_data, root, opts.threads)
    people, check_name = forgetting_set(opts.check, opts.check_limit)
    if people:
        for k, path in (("before", before), ("after", after)):
            rows[k]["check_pck@0.2_torso"] = forgetting(path, people, opts.threads)
    lat = measure_latency([before, after], ReportConfig(threads=opts.threads, runs=50,
                                                        progress=False))
    for k, t in zip(("before", "after"), lat):
        rows[k]["latency_ms"] = t["median"]
    report = {**rows, "check_set": check_name}
    log(format_report(report))
    return report


def format_report(r: dict[str, Any]) -> str:
    """The before/after table ``edgepose adapt`` prints."""
    b, a = r["before"], r["after"]
    lines = ["", f"{'':34s}{'before':>10s}{'after':>10s}{'change':>10s}"]

    def row(label: str, x, y, pct: bool = True) -> None:
        if x is None or y is None:
            return
        f = (lambda v: f"{100 * v:9.1f}%") if pct else (lambda v: f"{v:10.2f}")
        d = (y - x) * (100 if pct else 1)
        lines.append(f"{label:34s}{f(x)}{f(y)}{d:+10.1f}")

    ta, tb = a.get("teacher_agreement"), b.get("teacher_agreement")
    if ta and tb:
        lines[0] = f"held-out people (teacher as reference): {ta['people']}"
        row("agreement PCK@0.05 (box)", tb["pck@0.05"], ta["pck@0.05"])
        row("agreement PCK@0.1 (box)", tb["pck@0.1"], ta["pck@0.1"])
        gap = 1 - tb["pck@0.1"]
        if gap > 0:
            closed = (ta["pck@0.1"] - tb["pck@0.1"]) / gap
            lines.append(f"{'gap to the teacher closed (@0.1)':34s}{100 * closed:29.0f}%")
    fa, fb = a.get("train_agreement"), b.get("train_agreement")
    if fa and fb:
        row("fit on training frames (@0.1)", fb["pck@0.1"], fa["pck@0.1"])
    row(f"PCK@0.2 torso, {r['check_set']}"[:34], b.get("check_pck@0.2_torso"),
        a.get("check_pck@0.2_torso"))
    row("latency ms/person (batch 1)", b["latency_ms"], a["latency_ms"], pct=False)
    return "\n".join(lines)

"""Step 2: detector boxes + teacher keypoints for every sampled frame, as a COCO dict whose
images carry ``clip`` and ``frame_index``; resumable through the teacher's
:class:`~edgepose.engines.teacher.Progress`, annotations made by its
:func:`~edgepose.engines.teacher.teacher_annotation`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepose.app.adapting.options import AdaptOptions
from edgepose.data.footage import FootageFrame


def frame_people(path: Path, teacher, detector, max_people: int) -> dict[str, Any]:
    """One frame's record (what the progress file keeps): ``size`` [h, w] (None when the
    image cannot be read) and, for each of the first ``max_people`` detector boxes the
    teacher labels, its ``box``, ``det_score`` and raw teacher ``landmarks`` (the teacher
    crops each box with the detector's own padding: :mod:`edgepose.topdown`'s policy)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return {"size": None, "people": []}
    people = []
    boxes, scores = detector(img)
    for box, score in zip(boxes[:max_people], scores):
        lm = teacher.landmarks(path, box, padding=getattr(detector, "crop_padding", None))
        if lm is not None:
            people.append({"box": [round(float(v), 2) for v in box],
                           "det_score": round(float(score), 4),
                           "landmarks": lm.round(3).tolist()})
    return {"size": list(img.shape[:2]), "people": people}


def label_frames(frames: list[FootageFrame], root: Path, out: Path, teacher, detector,
                 opts: AdaptOptions) -> dict[str, Any]:
    """Detector boxes + teacher keypoints for every frame -> a COCO dict (also written to
    ``out``) whose images carry ``clip`` and ``frame_index``; a person is kept when the
    teacher labels at least ``opts.min_joints`` joints. Resumable: finished frames are kept
    in ``out.partial.jsonl``."""
    from tqdm import tqdm

    from edgepose.engines.teacher import (Progress, teacher_annotation, teacher_coco, to_coco17,
                                       write_coco)

    prog = Progress(out)
    images, anns = [], []
    bar = tqdm(frames, desc=f"label ({teacher.name} teacher)", unit="frame",
               disable=not opts.progress)
    for i, fr in enumerate(bar, start=1):
        key = str(fr.path.relative_to(root))
        if key not in prog.done:
            prog.add(key, frame_people(fr.path, teacher, detector, opts.max_people))
        rec = prog.done[key]
        if rec["size"] is None:
            continue
        h, w = rec["size"]
        images.append({"id": i, "file_name": key, "width": w, "height": h,
                       "clip": fr.clip, "frame_index": fr.index})
        for p in rec["people"]:
            kps, conf = to_coco17(np.asarray(p["landmarks"]), opts.threshold)
            if int((kps[:, 2] > 0).sum()) < opts.min_joints:
                continue
            anns.append({**teacher_annotation(len(anns) + 1, i, kps, conf, p["box"]),
                         "det_score": p["det_score"]})
    data = teacher_coco(f"edgepose adapt: teacher labels ({teacher.name})", images, anns,
                        {"model": teacher.model_name, "frames": len(images),
                         "people": len(anns), "threshold": opts.threshold})
    write_coco(out, data)
    prog.finish()
    return data


def subset(data: dict[str, Any], frames: list[FootageFrame], root: Path) -> dict[str, Any]:
    """The images (and their people) of ``data`` that are among ``frames``."""
    keys = {str(f.path.relative_to(root)) for f in frames}
    images = [im for im in data["images"] if im["file_name"] in keys]
    ids = {im["id"] for im in images}
    return {**data, "images": images,
            "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}

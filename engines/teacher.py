"""The teacher labels real images and video as COCO keypoint JSON.

Two kinds of teacher share one interface (``with Teacher(name) as t: t.landmarks(path, box)``):
MoveNet Thunder / Lightning (the default, :class:`MoveNetTeacher`), run in this process by
ONNX Runtime from the files ``edgepose weights import movenet-*`` writes, and MediaPipe
BlazePose full / heavy in its own venv (:mod:`edgepose.engines.blazepose`). The labelling
loops below (resumable through ``OUT.partial.jsonl``) turn their keypoints into COCO
annotations: per-joint teacher confidence in ``teacher_scores``, ``v = 2`` where it is at
least ``threshold``, else ``v = 0``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from edgepose.engines.blazepose import (  # noqa: F401 - BlazePose names re-exported
    DEFAULT_THRESHOLD, MP33_TO_COCO, TEACHERS, BlazePoseTeacher, install, teacher_python,
)
from edgepose.errors import TeacherError

# In-process teachers: MoveNet (edgepose/models/movenet.py) run by ONNX Runtime in our
# own environment; name -> the imported model (`edgepose weights import movenet-thunder`).
MOVENET_TEACHERS = {"movenet-thunder": "movenet_thunder", "movenet-lightning": "movenet_lightning"}
TEACHER_NAMES = (*MOVENET_TEACHERS, *TEACHERS)
DEFAULT_TEACHER = "movenet-thunder"


def default_threshold(name: str) -> float:
    """The confidence from which a joint counts as labelled: 0.3 for MoveNet (a heatmap
    peak), 0.5 for BlazePose (its landmark visibility)."""
    return 0.3 if name in MOVENET_TEACHERS else DEFAULT_THRESHOLD


def movenet_onnx(name: str) -> Path:
    """The imported ONNX file of MoveNet teacher ``name``; TeacherError with the import
    command if it is missing."""
    from edgepose.errors import ModelError
    from edgepose.models.movenet_import import imported_file

    try:
        return imported_file(MOVENET_TEACHERS[name], ".onnx")
    except ModelError as e:
        raise TeacherError(str(e)) from None


def check_available(name: str) -> None:
    """TeacherError, with what to run, if teacher ``name`` cannot start here."""
    if name in MOVENET_TEACHERS:
        movenet_onnx(name)
    elif name in TEACHERS:
        teacher_python()
    else:
        raise TeacherError(f"--teacher {name!r}: use one of {list(TEACHER_NAMES)}")


def Teacher(name: str = DEFAULT_TEACHER, python: Path | None = None):
    """The teacher called ``name``: MoveNet in-process (``movenet-thunder``, the default)
    or a BlazePose worker in its own venv (``full`` / ``heavy``). Use it as a context
    manager: ``with Teacher() as t: t.landmarks(path, box)``."""
    if name not in TEACHER_NAMES:
        raise TeacherError(f"--teacher {name!r}: use one of {list(TEACHER_NAMES)}")
    if name in MOVENET_TEACHERS:
        return MoveNetTeacher(name)
    return BlazePoseTeacher(name, python)


class MoveNetTeacher:
    """MoveNet (Thunder by default) in this process, through ONNX Runtime: no second venv.

    ``landmarks(path, box)`` returns (17, 3) COCO-17 [x, y, score] in image pixels, or None
    when the image cannot be read. The person is cropped by edgepose's one top-down rule
    (:mod:`edgepose.topdown`: ``CROP_PADDING`` around the box; no box: the whole image).
    """

    def __init__(self, name: str = DEFAULT_TEACHER, threads: int = 1):
        if name not in MOVENET_TEACHERS:
            raise TeacherError(f"--teacher {name!r}: use one of {list(TEACHER_NAMES)}")
        self.name = name
        self.threads = threads
        self.session = None
        self.meta = None
        self.last_ms: float | None = None

    def __enter__(self) -> "MoveNetTeacher":

        from edgepose.models.movenet import model_meta

        path = movenet_onnx(self.name)
        # the imported file's input contract (size, mean/std, colour) follows from its name
        self.meta = model_meta(MOVENET_TEACHERS[self.name])
        from edgepose.engines.ort_session import make_session
        from edgepose.errors import EngineError

        try:
            self.session = make_session(path, "cpu", self.threads, "MoveNet")
        except EngineError as e:  # corrupt or truncated file
            raise TeacherError(f"{e}; re-import it with 'edgepose weights import "
                               f"{self.name}'") from None
        return self

    @property
    def model_name(self) -> str:
        return f"MoveNet {self.name.split('-', 1)[1].capitalize()} v4 (ONNX Runtime)"

    def landmarks(self, path, box=None, padding: float | None = None) -> np.ndarray | None:
        """(17, 3) [x, y, score] image px for the person in ``box`` (None: the whole
        image); ``padding``: the box's crop padding (a detector's own; default the
        ground-truth 1.25), as :mod:`edgepose.topdown` crops for the student."""
        import time

        from edgepose.coords import CROP_PADDING
        from edgepose.data.files import try_read_image
        from edgepose.topdown import PersonBoxes, crop_people, crop_to_image

        img, _ = try_read_image(path)  # unreadable, truncated or too large: no person
        if img is None:
            return None
        where = PersonBoxes.of(img, None if box is None else [box],
                               CROP_PADDING if padding is None else padding)
        x, mats = crop_people(self.meta, img, where.boxes, where.paddings)
        t0 = time.perf_counter()
        coords, scores = self.session.run(None, {self.session.get_inputs()[0].name: x})
        self.last_ms = (time.perf_counter() - t0) * 1000.0
        pts = crop_to_image(coords, mats)[0]
        return np.concatenate([pts, scores[0][:, None]], axis=1).astype(np.float64)

    def __exit__(self, *exc) -> None:
        self.session = None


def to_coco17(landmarks: np.ndarray, threshold: float = DEFAULT_THRESHOLD):
    """(33, 3) BlazePose or (17, 3) COCO-17 (MoveNet) [x, y, confidence] -> ((17, 3) COCO
    [x, y, v], (17,) teacher confidence)."""
    pts = landmarks[list(MP33_TO_COCO)] if len(landmarks) == 33 else landmarks
    conf = pts[:, 2].copy()
    v = np.where(conf >= threshold, 2.0, 0.0)
    kps = np.stack([pts[:, 0], pts[:, 1], v], axis=1)
    kps[v == 0, :2] = 0.0
    return kps, conf


def fill_missing(human: np.ndarray, teacher: np.ndarray, agree: float = 0.1):
    """Fill the joints ``human`` lacks (v = 0) from ``teacher`` when the teacher agrees
    with the human labels: median error over joints both label <= ``agree`` x torso.

    Returns (filled (17, 3), accepted?, median error / torso or None)."""
    from edgepose.evaluate import torso_size

    both = (human[:, 2] > 0) & (teacher[:, 2] > 0)
    torso = torso_size(human)
    if torso is None or torso <= 0 or both.sum() < 4:
        return human.copy(), False, None
    err = np.linalg.norm(human[both, :2] - teacher[both, :2], axis=1) / torso
    med = float(np.median(err))
    if med > agree:
        return human.copy(), False, med
    out = human.copy()
    take = (human[:, 2] == 0) & (teacher[:, 2] > 0)
    out[take] = teacher[take]
    return out, True, med


# ----------------------------------------------------------------------------- labelling


class Progress:
    """Resumable results: one JSON line per finished key in ``OUT.partial.jsonl``."""

    def __init__(self, out: Path):
        self.path = out.with_name(out.name + ".partial.jsonl")
        self.done: dict[str, Any] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut off by an interruption: redo that item
                self.done[rec["key"]] = rec["value"]
        self._f = open(self.path, "a")

    def add(self, key: str, value: Any) -> None:
        self.done[key] = value
        self._f.write(json.dumps({"key": key, "value": value}) + "\n")
        self._f.flush()

    def finish(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        self._f.close()


def run_items(items: Iterable[tuple[str, str, Any]], teacher: Teacher, progress: Progress,
              total: int, show: bool = True) -> Iterator[tuple[str, np.ndarray | None]]:
    """Label (key, image path, box) items, skipping keys already in ``progress``."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=f"label ({teacher.name})", unit="person", disable=not show)
    for key, path, box in items:
        if key not in progress.done:
            lm = teacher.landmarks(path, box)
            progress.add(key, None if lm is None else lm.round(3).tolist())
        bar.update(1)
        value = progress.done[key]
        yield key, None if value is None else np.asarray(value, dtype=np.float64)
    bar.close()


def label_coco(ann_file, image_root, out, teacher: Teacher, fill: bool = False,
               threshold: float = DEFAULT_THRESHOLD, agree: float = 0.1,
               show: bool = True) -> dict[str, Any]:
    """Label every person box of a COCO file with the teacher.

    ``fill=False``: each annotation's keypoints become the teacher's (``teacher_scores``
    kept). ``fill=True``: keep the human labels and fill only their unlabelled joints,
    for people where the teacher agrees with them (:func:`fill_missing`); each
    annotation gets ``teacher_fill`` = accepted? and ``teacher_error`` = median error /
    torso. Returns the COCO dict (also written to ``out``) with a ``teacher`` summary.
    """
    from edgepose.data.files import read_json

    out = Path(out)
    data = read_json(ann_file, "COCO annotation file")
    images = {im["id"]: im for im in data.get("images", [])}
    anns = [a for a in data.get("annotations", []) if not a.get("iscrowd", 0)]
    prog = Progress(out)
    items = ((f"{a['image_id']}:{a.get('id', i)}", str(Path(image_root) / images[a["image_id"]]
              ["file_name"]), a["bbox"]) for i, a in enumerate(anns))
    found = accepted = 0
    errors = []
    new_anns = []
    for a, (key, lm) in zip(anns, run_items(items, teacher, prog, len(anns), show)):
        a = dict(a)
        human = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        if lm is None:
            if fill:
                a["teacher_fill"] = False
                new_anns.append(a)
            continue
        found += 1
        kps, conf = to_coco17(lm, threshold)
        a["teacher_scores"] = [round(float(c), 4) for c in conf]
        if fill:
            kps, ok, med = fill_missing(human, kps, agree)
            accepted += ok
            a["teacher_fill"] = bool(ok)
            a["teacher_error"] = None if med is None else round(med, 4)
            if med is not None:
                errors.append(med)
        a["keypoints"] = [round(float(v), 3) for v in kps.reshape(-1)]
        a["num_keypoints"] = int((kps[:, 2] > 0).sum())
        new_anns.append(a)
    data = dict(data)
    data["annotations"] = new_anns
    data["teacher"] = {"model": teacher.model_name,
                       "people": len(anns), "found": found, "threshold": threshold,
                       "mode": "fill" if fill else "label"}
    if fill:
        data["teacher"].update(accepted=accepted, agree=agree,
                               median_error_torso=float(np.median(errors)) if errors else None)
    write_coco(out, data)
    prog.finish()
    return data


def extract_frames(video, dest: Path, every: int = 10, max_frames: int = 0) -> list[Path]:
    """Write every ``every``-th frame of ``video`` to ``dest/frame_NNNNNN.jpg``."""
    from contextlib import closing

    from edgepose.data.footage import read_frames, save_frame
    from edgepose.errors import SourceError

    dest.mkdir(parents=True, exist_ok=True)
    files = []
    with closing(read_frames(video)) as frames:  # closing releases the capture early
        for i, frame in frames:
            if i % every:
                continue
            files.append(save_frame(dest / f"frame_{i:06d}.jpg", frame))
            if max_frames and len(files) >= max_frames:
                break
    if not files:
        raise SourceError(f"{video}: no frame could be read")
    return files


def label_images(files: list[Path], root: Path, out, teacher: Teacher,
                 threshold: float = DEFAULT_THRESHOLD, show: bool = True) -> dict[str, Any]:
    """Label whole images (one person each: MediaPipe's pose solution finds one) into a
    COCO file whose ``file_name`` entries are relative to ``root``. Images that cannot be
    used (unreadable, empty, truncated, too large) are named on stderr and listed under
    ``teacher.skipped``."""
    import sys

    from edgepose.data.files import try_read_image

    from edgepose.data.lsp import joint_box

    out = Path(out)
    prog = Progress(out)
    items = ((str(p.relative_to(root)), str(p), None) for p in files)
    images, anns, skipped = [], [], []
    for i, (p, (key, lm)) in enumerate(zip(files, run_items(items, teacher, prog, len(files),
                                                              show)), start=1):
        img, why = try_read_image(p)
        if img is None:  # said and counted, never dropped silently
            skipped.append(f"{p}: {why}")
            print(f"edgepose label: skipping {p}: {why}", file=sys.stderr)
            continue
        h, w = img.shape[:2]
        images.append({"id": i, "file_name": key, "width": w, "height": h})
        if lm is None:
            continue
        kps, conf = to_coco17(lm, threshold)
        box = joint_box(kps, w, h)
        if box is None:
            continue
        anns.append(teacher_annotation(i, i, kps, conf, box))
    data = teacher_coco(f"teacher labels ({teacher.model_name})", images, anns,
                        {"model": teacher.model_name, "images": len(images), "found": len(anns),
                         "threshold": threshold, "mode": "label", "skipped": skipped})
    write_coco(out, data)
    prog.finish()
    return data


def teacher_annotation(ann_id: int, image_id: int, kps: np.ndarray, conf: np.ndarray,
                       box) -> dict[str, Any]:
    """One COCO person annotation of teacher keypoints: ``kps`` (17, 3) [x, y, v] and the
    teacher's (17,) confidence ``conf`` (kept as ``teacher_scores``) from :func:`to_coco17`,
    ``box`` [x, y, w, h] in image pixels."""
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": [round(float(v), 3) for v in kps.reshape(-1)],
            "num_keypoints": int((kps[:, 2] > 0).sum()),
            "teacher_scores": [round(float(c), 4) for c in conf],
            "bbox": [round(float(v), 2) for v in box],
            "area": round(float(box[2]) * float(box[3]), 2)}


def teacher_coco(description: str, images: list[dict], annotations: list[dict],
                 summary: dict[str, Any]) -> dict[str, Any]:
    """A COCO keypoint dict of teacher labels; ``summary`` (the teacher's name, counts,
    threshold) is kept under ``teacher``."""
    from edgepose.skeleton import coco_person_category

    return {"info": {"description": description}, "images": images, "annotations": annotations,
            "categories": [coco_person_category()], "teacher": summary}


def write_coco(out: Path, data: dict[str, Any]) -> None:
    """Write a COCO dict atomically (compact JSON)."""
    from edgepose.fileio import atomic_write_bytes

    text = json.dumps(data, separators=(",", ":")).encode()
    atomic_write_bytes(out, lambda f: f.write(text))

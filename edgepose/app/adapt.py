"""``edgepose adapt``: distil the teacher into the fast model on a user's own footage.

A fixed camera sees one scene for months. This module turns the user's videos / image
sequences into a fine-tuned model in one call:

1. **sample** distinct frames (:mod:`edgepose.data.footage`: scene-change aware), and hold
   out the last ``holdout`` fraction of each clip **in time**;
2. **label** them: the bundled person detector finds everyone, the teacher (MoveNet
   Thunder in-process by default, :mod:`edgepose.data.teacher`) labels each box; resumable like ``label``;
3. **fine-tune** the base model (its own weights: a checkpoint, or the ``.pt`` shipped next
   to a bundled ``.onnx``) on the training frames mixed with a replay sample of real
   training data (``replay_ratio`` replay samples per footage sample), with the base
   recipe's augmentations, through the normal trainer (progress bar, ``--resume`` state);
4. **export** ONNX whose metadata records the adaptation (:attr:`ModelMeta.adaptation`:
   footage hashes, teacher, epochs, hold-out), optionally INT8-calibrated on the footage;
5. **report** before / after: agreement with the teacher on the held-out people (PCK@0.05
   / 0.1 of the box's longer side), PCK@0.2 (torso) on a labelled real set to show what was
   forgotten (LSP test where it is found), and batch-1 latency of both files.

Everything lives in a work folder (default ``OUT_adapt/``): rerunning the same command
reuses the sampled frames and labels and resumes training where it stopped.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgepose.data.footage import FootageFrame, SamplingOptions
from edgepose.errors import ConfigError, DataError, ModelError

MIN_TRAIN_PEOPLE = 8
MIN_HOLDOUT_PEOPLE = 4
MAX_FIT_FRAMES = 60  # training frames re-scored after fine-tuning (the fit, not the goal)
STATE_FILE = "adapt_state.json"
# A fixed camera sees one viewpoint: less scale / rotation jitter than the base recipe's, no
# half-body crops or occluders. On vtest (64x64) this forgot 0.5 LSP points instead of 2.5
# and closed as much of the teacher gap (benchmarks/results/adapt_heatmap_variants).
ADAPT_AUG = {"scale": 0.25, "rotation": 15.0, "half_body_prob": 0.0, "occluder_prob": 0.0}


@dataclass
class AdaptOptions:
    """What ``edgepose adapt`` does; the CLI fills it from its flags."""

    footage: list[str]
    out: str
    model: str | None = None  # .pt checkpoint or .onnx with a sibling .pt; None = bundled
    teacher: str = "movenet-thunder"
    epochs: int = 10
    holdout: float = 0.2
    replay: list[str] = field(default_factory=list)  # ["ANN.json:IMAGES", ...]
    replay_ratio: float = 1.0
    lr: float = 1e-3
    batch_size: int = 32
    freeze_bn: bool = False
    # AugConfig overrides of the base recipe's: ADAPT_AUG, then the user's --aug
    aug: dict[str, Any] = field(default_factory=dict)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    max_people: int = 6
    min_joints: int = 8
    threshold: float | None = None  # None: the teacher's own default (teacher.default_threshold)
    work: str | None = None
    fresh: bool = False
    precision: str = "fp32"
    target: str = "tensorrt"
    check: str = "auto"  # forgetting set: auto (LSP test if found), none, or ANN.json:IMAGES
    check_limit: int = 0
    threads: int = 1
    seed: int = 0
    progress: bool = True

    def validate(self) -> "AdaptOptions":
        problems = [
            (bool(self.footage), "give at least one video, image folder or image as FOOTAGE"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (0 <= self.holdout < 1, f"--holdout must be in [0, 1), got {self.holdout}"),
            (self.replay_ratio >= 0, f"--replay-ratio must be >= 0, got {self.replay_ratio}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.max_people >= 1, f"--max-people must be >= 1, got {self.max_people}"),
            (1 <= self.min_joints <= 17, f"--min-joints must be in 1..17, got {self.min_joints}"),
            (self.threshold is None or 0 < self.threshold <= 1,
             f"--threshold must be in (0, 1], got {self.threshold}"),
            (self.precision in ("fp32", "int8"), f"--precision {self.precision!r}: fp32 or int8"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (Path(self.out).suffix.lower() == ".onnx",
             f"--out {self.out}: the adapted model is an ONNX file (name it *.onnx)"),
        ]
        for ok, msg in problems:
            if not ok:
                raise ConfigError(msg)
        from edgepose.data.transforms import AugConfig

        bad = sorted(set(self.aug) - {f.name for f in dataclasses.fields(AugConfig)})
        if bad:
            raise ConfigError(f"--aug: unknown key(s) {bad}; use keys of data.aug such as "
                              "scale, rotation, half_body_prob, occluder_prob")
        for f in self.footage:
            if not Path(f).exists():
                raise DataError(f"{f}: no such video, image folder or image")
        self.sampling.validate()
        return self

    @property
    def work_dir(self) -> Path:
        out = Path(self.out)
        return Path(self.work) if self.work else out.with_name(out.stem + "_adapt")


# ----------------------------------------------------------------------------- the base model


@dataclass
class BaseModel:
    """The model being adapted: its trainable weights (``checkpoint``), the ONNX users run
    today (``onnx``, exported into the work folder when only a checkpoint is given) and its
    training config (for the augmentations and the replay sources)."""

    checkpoint: Path
    onnx: Path | None
    config: dict[str, Any]
    meta: Any


def resolve_base(model: str | None) -> BaseModel:
    """``None``: the bundled model and the weights shipped beside it; ``X.pt``: a
    checkpoint; ``X.onnx``: needs ``X.pt`` beside it (an ONNX file holds no trainable
    weights)."""
    from edgepose.app.api import default_model
    from edgepose.checkpoint import load_checkpoint

    path = Path(model) if model else default_model()
    onnx = None
    if path.suffix.lower() == ".onnx":
        onnx, path = path, path.with_suffix(".pt")
        if not path.is_file():
            raise ModelError(f"{onnx}: an ONNX file holds no trainable weights and there is no "
                             f"{path.name} beside it; pass the checkpoint it was exported from "
                             "(--model runs/NAME/best.pt)")
    elif path.suffix.lower() not in (".pt", ".pth"):
        raise ModelError(f"{path}: adapt fine-tunes an edgepose checkpoint (.pt) or a bundled "
                         ".onnx with its .pt beside it")
    payload = load_checkpoint(path)
    config = payload.get("config")
    if not isinstance(config, dict):
        raise ModelError(f"{path}: has no training config (not written by 'edgepose train' "
                         "or 'edgepose weights pack'); adapt needs its recipe")
    return BaseModel(path, onnx, config, payload["meta"])


# ----------------------------------------------------------------------------- labelling


def label_frames(frames: list[FootageFrame], root: Path, out: Path, teacher, detector,
                 opts: AdaptOptions) -> dict[str, Any]:
    """Detector boxes + teacher keypoints for every frame -> a COCO dict (also written to
    ``out``) whose images carry ``clip`` and ``frame_index``. Resumable: finished frames
    are kept in ``out.partial.jsonl``."""
    import cv2
    from tqdm import tqdm

    from edgepose.data.teacher import Progress, to_coco17, write_coco
    from edgepose.skeleton import coco_person_category

    prog = Progress(out)
    images, anns = [], []
    bar = tqdm(frames, desc=f"label ({teacher.name} teacher)", unit="frame",
               disable=not opts.progress)
    for i, fr in enumerate(bar, start=1):
        key = str(fr.path.relative_to(root))
        if key not in prog.done:
            img = cv2.imread(str(fr.path), cv2.IMREAD_COLOR)
            people = []
            if img is not None:
                boxes, scores = detector(img)
                for box, score in zip(boxes[:opts.max_people], scores):
                    lm = teacher.landmarks(fr.path, box)
                    if lm is not None:
                        people.append({"box": [round(float(v), 2) for v in box],
                                       "det_score": round(float(score), 4),
                                       "landmarks": lm.round(3).tolist()})
            prog.add(key, {"size": None if img is None else list(img.shape[:2]),
                           "people": people})
        rec = prog.done[key]
        if rec["size"] is None:
            continue
        h, w = rec["size"]
        images.append({"id": i, "file_name": key, "width": w, "height": h,
                       "clip": fr.clip, "frame_index": fr.index})
        for p in rec["people"]:
            kps, conf = to_coco17(np.asarray(p["landmarks"]), opts.threshold)
            n = int((kps[:, 2] > 0).sum())
            if n < opts.min_joints:
                continue
            box = p["box"]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "bbox": box, "area": round(box[2] * box[3], 2),
                         "keypoints": [round(float(v), 3) for v in kps.reshape(-1)],
                         "num_keypoints": n, "teacher_scores": [round(float(c), 4) for c in conf],
                         "det_score": p["det_score"]})
    data = {"info": {"description": f"edgepose adapt: teacher labels ({teacher.name})"},
            "images": images, "annotations": anns, "categories": [coco_person_category()],
            "teacher": {"model": teacher.model_name, "frames": len(images),
                        "people": len(anns), "threshold": opts.threshold}}
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


# ----------------------------------------------------------------------------- evaluation


def teacher_agreement(model_path: Path, data: dict[str, Any], root: Path,
                      threads: int) -> dict[str, float]:
    """PCK@0.05 / 0.1 (box's longer side) of a model against the teacher's keypoints on
    the given people (their detector boxes), over the joints the teacher labelled."""
    import cv2

    from edgepose.app.api import load
    from edgepose.evaluate import bbox_normaliser, pck_hits

    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    files = {im["id"]: root / im["file_name"] for im in data["images"]}
    preds, gts, boxes = [], [], []
    with load(model_path, device="cpu", threads=threads) as model:
        for image_id, anns in by_image.items():
            img = cv2.imread(str(files[image_id]), cv2.IMREAD_COLOR)
            poses = model.predict(img, [a["bbox"] for a in anns])
            for a, pose in zip(anns, poses):
                preds.append(pose.keypoints)
                gts.append(np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3))
                boxes.append(a["bbox"])
    if not preds:
        return {"pck@0.05": float("nan"), "pck@0.1": float("nan"), "people": 0}
    pred, gt = np.stack(preds), np.stack(gts)
    norm = bbox_normaliser(np.asarray(boxes))
    out: dict[str, float] = {"people": len(preds)}
    for alpha in (0.05, 0.1):
        hit, n = pck_hits(pred, gt[..., :2], gt[..., 2], norm, alpha)
        out[f"pck@{alpha:g}"] = hit / max(n, 1)
    return out


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


def torso_pck(model_path: Path, people, threads: int) -> float:
    """PCK@0.2 (torso normaliser) over LSP's 12 limb joints on labelled people."""
    import cv2

    from edgepose.app.api import load
    from edgepose.evaluate import LSP_LIMBS, torso_pck_hits

    cache: dict[Path, np.ndarray] = {}
    with load(model_path, device="cpu", threads=threads) as model:
        images = [cache.setdefault(p.image, cv2.imread(str(p.image))) for p in people]
        poses = model.predict_many(images, [[p.box] for p in people])
    coords = np.stack([ps[0].keypoints for ps in poses])
    hits, counts = torso_pck_hits(coords, np.stack([p.keypoints for p in people]), 0.2)
    limbs = list(LSP_LIMBS)
    return float(hits[limbs].sum() / max(counts[limbs].sum(), 1))


def split_pair(spec: str, flag: str) -> tuple[str, str]:
    ann, sep, images = spec.rpartition(":")
    if not sep or not ann:
        raise ConfigError(f"{flag} {spec!r}: expected ANN.json:IMAGE_FOLDER")
    if not Path(ann).is_file():
        raise DataError(f"{flag}: {ann}: annotation file not found")
    if not Path(images).is_dir():
        raise DataError(f"{flag}: {images}: image folder not found")
    return ann, images


# ----------------------------------------------------------------------------- training


def replay_sources(opts: AdaptOptions, base: BaseModel, log: Callable) -> list[dict[str, Any]]:
    """``--replay`` pairs, or the base recipe's own sources that exist here."""
    if opts.replay_ratio == 0:
        return []
    if opts.replay:
        pairs = [split_pair(s, "--replay") for s in opts.replay]
        return [{"ann": a, "images": i, "weight": 1.0} for a, i in pairs]
    found, missing = [], []
    for src in base.config.get("data", {}).get("sources", []):
        ann, images = Path(str(src.get("ann", ""))), Path(str(src.get("images", "")))
        (found if ann.is_file() and images.is_dir() else missing).append(
            {"ann": str(ann), "images": str(images), "weight": float(src.get("weight", 1.0))})
    if missing:
        log(f"adapt: {len(missing)} of the base model's training sources are not here "
            f"({', '.join(m['ann'] for m in missing[:3])}); replaying the other {len(found)}")
    if not found:
        log("adapt: no replay data, so the model may forget what it knew; pass --replay "
            "ANN.json:IMAGES (real labelled people) or --replay-ratio 0 to silence this")
    return found


def train_config(opts: AdaptOptions, base: BaseModel, work: Path, n_train: int,
                 replay: list[dict[str, Any]]):
    """The base recipe (model, augmentations) on the footage + replay, fine-tuning from the
    base weights: no validation set (the hold-out is never looked at while training)."""
    from edgepose.config import config_from_dict

    cfg = config_from_dict(json.loads(json.dumps(base.config)), source=str(base.checkpoint))
    total_w = sum(s["weight"] for s in replay) or 1.0
    sources = [{"ann": str(work / "train.json"), "images": str(work / "frames"), "weight": 1.0}]
    sources += [{**s, "weight": opts.replay_ratio * s["weight"] / total_w} for s in replay]
    per_epoch = max(int(round(n_train * (1 + (opts.replay_ratio if replay else 0)))),
                    opts.batch_size)
    cfg.model.pretrained = False
    cfg.model.init = str(base.checkpoint)
    cfg.data = dataclasses.replace(cfg.data, train_ann="", train_images="", val_ann="",
                                   val_images="", sources=sources, epoch_samples=per_epoch,
                                   workers=0, aug={**cfg.data.aug, **ADAPT_AUG, **opts.aug})
    cfg.optim = dataclasses.replace(cfg.optim, epochs=opts.epochs, lr=opts.lr,
                                    batch_size=opts.batch_size, warmup_epochs=0.0,
                                    schedule="cosine", freeze_bn=opts.freeze_bn)
    cfg.out, cfg.seed, cfg.threads = str(work / "train"), opts.seed, opts.threads
    cfg.val_every, cfg.save_every, cfg.progress = 0, 1, opts.progress
    cfg.device, cfg.max_steps_per_epoch = "cpu", 0
    return cfg.validate()  # e.g. an unknown --aug key


# options that do not change what the work folder holds (frames, labels, training)
NOT_FINGERPRINTED = frozenset({"footage", "model", "out", "work", "fresh", "precision", "target",
                               "check", "check_limit", "threads", "progress"})


def fingerprint(opts: AdaptOptions, base: BaseModel, hashes: list[dict]) -> dict[str, Any]:
    """What a work folder was made from: reused only for the same inputs (every option
    but :data:`NOT_FINGERPRINTED`, the footage by content, the base by path)."""
    kept = {k: v for k, v in dataclasses.asdict(opts).items() if k not in NOT_FINGERPRINTED}
    return {**kept, "footage": hashes, "base": str(base.checkpoint)}


def _prepare_work(opts: AdaptOptions, state: dict[str, Any]) -> Path:
    work = opts.work_dir
    state_file = work / STATE_FILE
    if work.exists() and opts.fresh:
        shutil.rmtree(work)
    if state_file.is_file():
        try:
            old = json.loads(state_file.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old != state:
            raise ConfigError(f"{work} holds an adaptation of other footage or settings; "
                              "rerun with --fresh to replace it, or --work NEW_FOLDER")
    elif work.exists() and any(work.iterdir()):
        raise ConfigError(f"{work} exists and is not an edgepose adapt folder; pass --work "
                          "NEW_FOLDER or --fresh to replace it")
    work.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, indent=1))
    return work


# ----------------------------------------------------------------------------- the whole job


def adapt(opts: AdaptOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the five steps (module docstring); returns the report (also written to
    ``OUT.adapt.json``)."""
    import time

    from edgepose.data.footage import file_digest, sample_footage, split_holdout
    from edgepose.data.teacher import Teacher
    from edgepose.engines.detector import Detector

    opts.validate()
    t_start = time.perf_counter()
    base = resolve_base(opts.model)
    # fail fast: the teacher must be installed before any frame is read
    from edgepose.data.teacher import check_available, default_threshold

    check_available(opts.teacher)
    if opts.threshold is None:
        opts.threshold = default_threshold(opts.teacher)
    hashes = [{"path": str(f), "sha256": file_digest(f)} for f in opts.footage]
    work = _prepare_work(opts, fingerprint(opts, base, hashes))
    frames_root = work / "frames"

    # 1. sample, hold out in time
    frames = sample_footage(opts.footage, frames_root, opts.sampling, opts.progress)
    train_frames, hold_frames = split_holdout(frames, opts.holdout)
    log(f"adapt: {len(frames)} frames sampled from {len(opts.footage)} source(s); "
        f"{len(hold_frames)} held out (the last {opts.holdout:.0%} of each clip in time)")

    # 2. label
    t0 = time.perf_counter()
    labels_file = work / "labels.json"
    if labels_file.is_file():  # a finished labelling of this same footage and settings
        labels = json.loads(labels_file.read_text())
    else:
        with Teacher(opts.teacher) as teacher:
            detector = Detector(device="cpu", threads=opts.threads, max_people=opts.max_people)
            labels = label_frames(frames, frames_root, labels_file, teacher, detector, opts)
    t_name = labels["teacher"]["model"]
    label_s = time.perf_counter() - t0
    train_data = subset(labels, train_frames, frames_root)
    hold_data = subset(labels, hold_frames, frames_root)
    n_train, n_hold = len(train_data["annotations"]), len(hold_data["annotations"])
    if n_train + n_hold == 0:
        raise DataError(f"no person found in {', '.join(opts.footage)} ({len(frames)} frames "
                        "sampled; the detector and the teacher found nobody): adapt needs "
                        "footage with people in it")
    need_hold = MIN_HOLDOUT_PEOPLE if opts.holdout > 0 else 0
    if n_train < MIN_TRAIN_PEOPLE or n_hold < need_hold:
        raise DataError(
            f"too few labelled people: {n_train} for training and {n_hold} held out; adapt "
            f"needs at least {MIN_TRAIN_PEOPLE} and {need_hold}: give longer footage, "
            "sample more frames (--max-frames, --min-gap, --scene-change) or lower --holdout")
    for name, d in (("train.json", train_data), ("holdout.json", hold_data)):
        (work / name).write_text(json.dumps(d))
    log(f"adapt: teacher labelled {n_train} people for training, {n_hold} held out "
        f"({label_s:.0f} s)")

    # 3. fine-tune (resumes from the work folder's last.pt)
    from edgepose.checkpoint import load_checkpoint
    from edgepose.train import train

    replay = replay_sources(opts, base, log)
    cfg = train_config(opts, base, work, n_train, replay)
    last = Path(cfg.out) / "last.pt"
    t0 = time.perf_counter()
    done = last.is_file() and int(load_checkpoint(last).get("epoch", -1)) + 1 >= opts.epochs
    if not done:  # an interrupted first epoch left no last.pt: start that run again
        train(cfg, resume=last if last.is_file() else None, overwrite=not last.is_file())
    train_s = time.perf_counter() - t0

    # 4. export (+ INT8)
    from edgepose.checkpoint import load_model
    from edgepose.engines.export import ExportOptions, export_model

    model, meta = load_model(last)
    out = Path(opts.out)
    adaptation = {
        "base": base.checkpoint.name, "base_onnx": base.onnx.name if base.onnx else None,
        "footage": [{**h, "frames": sum(f.source == h["path"] for f in frames)}
                    for h in hashes],
        "teacher": t_name, "epochs": opts.epochs, "lr": opts.lr,
        "train_people": n_train, "holdout_people": n_hold,
        "holdout_from": {c: min(f.index for f in hold_frames if f.clip == c)
                         for c in dict.fromkeys(f.clip for f in hold_frames)},
        "replay": [s["ann"] for s in replay], "replay_ratio": opts.replay_ratio if replay else 0,
        "precision": opts.precision,
        "date": datetime.date.today().isoformat(),
    }
    meta = dataclasses.replace(meta, adaptation=adaptation, name=f"{meta.name}-adapted")
    fp32_out = out.with_suffix(".fp32.onnx") if opts.precision == "int8" else out
    export_model(model, meta, fp32_out, ExportOptions(), progress=opts.progress)
    # its trainable weights beside it, so `adapt --model OUT.onnx` can adapt it again
    from edgepose.checkpoint import pack_checkpoint

    pack_checkpoint(last, out.with_suffix(".pt"), meta=meta)
    if opts.precision == "int8":
        _quantize(fp32_out, out, work, meta, opts)
    before = base.onnx
    if before is None:
        before = work / "base.onnx"
        if not before.is_file():
            from edgepose.engines.export import export_checkpoint

            export_checkpoint(base.checkpoint, before, progress=opts.progress)

    # 5. report
    report = _report(opts, before, out, hold_data, frames_root, log,
                     train_data=subset(train_data, train_frames[-MAX_FIT_FRAMES:], frames_root))
    report.update(work=str(work), frames=len(frames), train_people=n_train,
                  holdout_people=n_hold, replay=adaptation["replay"], label_s=label_s,
                  train_s=train_s, total_s=time.perf_counter() - t_start,
                  train_frames=[[f.clip, f.index] for f in train_frames],
                  holdout_frames=[[f.clip, f.index] for f in hold_frames])
    out.with_suffix(".adapt.json").write_text(json.dumps(report, indent=1))
    return report


def _quantize(fp32: Path, out: Path, work: Path, meta, opts: AdaptOptions) -> None:
    from edgepose.calibration.qdq import quantize_qdq, target_config
    from edgepose.calibration.stream import CalibrationStream, StreamConfig

    stream = CalibrationStream(str(work / "train.json"), meta,
                               StreamConfig(count=256, batch=8, seed=opts.seed,
                                            progress=opts.progress),
                               image_root=str(work / "frames"))
    quantize_qdq(fp32, out, stream, meta, target_config(opts.target))


def _report(opts: AdaptOptions, before: Path, after: Path, hold_data: dict, root: Path,
            log: Callable, train_data: dict | None = None) -> dict[str, Any]:
    from edgepose.calibration.report import ReportConfig, measure_latency

    rows: dict[str, Any] = {"before": {"model": str(before)}, "after": {"model": str(after)}}
    for k, path in (("before", before), ("after", after)):
        if hold_data["annotations"]:
            rows[k]["teacher_agreement"] = teacher_agreement(path, hold_data, root, opts.threads)
        if train_data and train_data["annotations"]:  # how well it fits what it saw
            rows[k]["train_agreement"] = teacher_agreement(path, train_data, root, opts.threads)
    people, check_name = forgetting_set(opts.check, opts.check_limit)
    if people:
        for k, path in (("before", before), ("after", after)):
            rows[k]["check_pck@0.2_torso"] = torso_pck(path, people, opts.threads)
    lat = measure_latency([before, after], ReportConfig(threads=opts.threads, runs=50,
                                                        progress=False))
    for k, l in zip(("before", "after"), lat):
        rows[k]["latency_ms"] = l["median"]
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

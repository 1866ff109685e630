"""The whole ``edgepose adapt`` job: the five steps of :mod:`edgepose.app.adapting` in
order, each a function of its own module; :func:`adapt` returns the report (also written
to ``OUT.adapt.json``)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

from edgepose.app.adapting.base_model import before_onnx, resolve_base
from edgepose.app.adapting.publish import adaptation_record, export_adapted
from edgepose.app.adapting.labels import label_frames, subset
from edgepose.app.adapting.options import (MAX_FIT_FRAMES, MIN_HOLDOUT_PEOPLE,
                                           MIN_TRAIN_PEOPLE, AdaptOptions)
from edgepose.app.adapting.before_after import before_after
from edgepose.app.adapting.training import fine_tune, replay_sources, train_config
from edgepose.app.adapting.workdir import (fingerprint, footage_hashes, prepare_work,
                                           reset_training_if_changed)
from edgepose.data.footage import FootageFrame
from edgepose.errors import DataError


def with_teacher_threshold(opts: AdaptOptions) -> AdaptOptions:
    """Fail fast (the teacher must be installed before any frame is read) and fill
    ``threshold`` with the teacher's own default when none is given."""
    from edgepose.engines.teacher import check_available, default_threshold

    check_available(opts.teacher)
    if opts.threshold is not None:
        return opts
    return dataclasses.replace(opts, threshold=default_threshold(opts.teacher))


def sample(opts: AdaptOptions, frames_root: Path, log: Callable[[str], None]):
    """Step 1: (all, training, held-out) frames; the hold-out is the end of each clip."""
    from edgepose.data.footage import sample_footage, split_holdout

    frames = sample_footage(opts.footage, frames_root, opts.sampling, opts.progress)
    train_frames, hold_frames = split_holdout(frames, opts.holdout)
    log(f"adapt: {len(frames)} frames sampled from {len(opts.footage)} source(s); "
        f"{len(hold_frames)} held out (the last {opts.holdout:.0%} of each clip in time)")
    return frames, train_frames, hold_frames


def label(opts: AdaptOptions, frames: list[FootageFrame], work: Path) -> dict[str, Any]:
    """Step 2: the teacher's labels of every frame (``labels.json``, reused once finished)."""
    labels_file = work / "labels.json"
    if labels_file.is_file():  # a finished labelling of this same footage and settings
        return json.loads(labels_file.read_text())
    from edgepose.engines.teacher import Teacher
    from edgepose.engines.detector import Detector

    with Teacher(opts.teacher) as teacher:
        detector = Detector(device="cpu", threads=opts.threads, max_people=opts.max_people)
        return label_frames(frames, work / "frames", labels_file, teacher, detector, opts)


def split_labels(opts: AdaptOptions, labels: dict[str, Any], frames: list[FootageFrame],
                 train_frames: list[FootageFrame], hold_frames: list[FootageFrame],
                 work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Training and held-out labels (written as ``train.json`` / ``holdout.json``);
    DataError, saying what to change, when there are too few people for either."""
    root = work / "frames"
    train_data, hold_data = subset(labels, train_frames, root), subset(labels, hold_frames, root)
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
    return train_data, hold_data


def adapt(opts: AdaptOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Sample, label, fine-tune, export, report (:mod:`edgepose.app.adapting`); returns
    the report (also written to ``OUT.adapt.json``)."""
    opts.validate()
    t_start = time.perf_counter()
    base = resolve_base(opts.model)
    opts = with_teacher_threshold(opts)
    hashes = footage_hashes(opts.footage)
    work = prepare_work(opts.work_dir, fingerprint(opts, base, hashes), opts.fresh)
    frames_root = work / "frames"

    frames, train_frames, hold_frames = sample(opts, frames_root, log)  # 1
    t0 = time.perf_counter()
    labels = label(opts, frames, work)  # 2
    label_s = time.perf_counter() - t0
    train_data, hold_data = split_labels(opts, labels, frames, train_frames, hold_frames, work)
    counts = (len(train_data["annotations"]), len(hold_data["annotations"]))
    log(f"adapt: teacher labelled {counts[0]} people for training, {counts[1]} held out "
        f"({label_s:.0f} s)")

    replay = replay_sources(opts, base, log)  # 3
    reset_training_if_changed(work, opts, log)
    t0 = time.perf_counter()
    last = fine_tune(train_config(opts, base, work, counts[0], replay), opts.epochs)
    train_s = time.perf_counter() - t0

    adaptation = adaptation_record(opts, base, hashes, frames, hold_frames,  # 4
                                   labels["teacher"]["model"], counts, replay)
    final = Path(opts.out)
    (work / "candidate").mkdir(exist_ok=True)  # published to --out only if it is not worse
    out = export_adapted(last, adaptation, work,
                         dataclasses.replace(opts, out=str(work / "candidate" / final.name)))
    before = before_onnx(base, work, opts.progress)

    report = before_after(opts, before, out, hold_data, frames_root, log,  # 5
                          train_data=subset(train_data, train_frames[-MAX_FIT_FRAMES:],
                                            frames_root))
    report.update(work=str(work), frames=len(frames), train_people=counts[0],
                  holdout_people=counts[1], replay=adaptation["replay"], label_s=label_s,
                  train_s=train_s, total_s=time.perf_counter() - t_start,
                  train_frames=[[f.clip, f.index] for f in train_frames],
                  holdout_frames=[[f.clip, f.index] for f in hold_frames])
    publish_or_refuse(out, final, report, opts, log)  # writes OUT.adapt.json either way
    return report


def publish_or_refuse(candidate: Path, final: Path, report: dict[str, Any],
                      opts: AdaptOptions, log: Callable[[str], None]) -> None:
    """Move the adapted model (and its .pt / .fp32.onnx) to ``--out`` -- unless it agrees
    with the teacher on the held-out frames less than the base model does: then it stays
    in the work folder and a one-line error says so (``--keep-worse`` writes it anyway)."""
    import shutil

    from edgepose.errors import EdgeposeError

    b = (report.get("before") or {}).get("teacher_agreement") or {}
    a = (report.get("after") or {}).get("teacher_agreement") or {}
    worse = "pck@0.05" in a and "pck@0.05" in b and a["pck@0.05"] < b["pck@0.05"]
    report["published"] = not worse or opts.keep_worse
    final.with_suffix(".adapt.json").write_text(json.dumps(report, indent=1))
    if worse and not opts.keep_worse:
        raise EdgeposeError(
            f"the adapted model agrees with the teacher less than the base model on the "
            f"held-out frames (PCK@0.05 {100 * b['pck@0.05']:.1f}% -> {100 * a['pck@0.05']:.1f}%)"
            f"; {final} was not written (the model is in {candidate.parent}; --keep-worse "
            "writes it; more footage, fewer --epochs or a lower --lr usually help)")
    if worse:
        log(f"adapt: warning: the adapted model is worse on the held-out frames "
            f"({100 * b['pck@0.05']:.1f}% -> {100 * a['pck@0.05']:.1f}%); written anyway "
            "(--keep-worse)")
    final.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".fp32.onnx", ".pt"):
        src = candidate.with_suffix(suffix)
        if src.is_file():
            shutil.move(str(src), str(final.with_suffix(suffix)))
    shutil.move(str(candidate), str(final))

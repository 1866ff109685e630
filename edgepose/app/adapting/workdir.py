"""The work folder (frames, labels, training state) and the fingerprint that guards it:
a folder is reused only for the same inputs, so a rerun resumes and never mixes runs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from edgepose.app.adapting.base_model import BaseModel
from edgepose.app.adapting.options import AdaptOptions
from edgepose.errors import ConfigError

STATE_FILE = "adapt_state.json"
# options that do not change what the work folder holds (frames, labels, training)
NOT_FINGERPRINTED = frozenset({"footage", "model", "out", "work", "fresh", "precision", "target",
                               "check", "check_limit", "threads", "progress", "keep_worse",
                               "epochs", "lr", "batch_size", "freeze_bn", "aug", "replay",
                               "replay_ratio"})
# What the fine-tuning used (not the frames or labels): a change restarts training in the
# same work folder, keeping the labels; epochs are not here (more epochs resume).
TRAINING = ("lr", "batch_size", "freeze_bn", "aug", "replay", "replay_ratio")


def training_state(opts: AdaptOptions) -> dict[str, Any]:
    d = dataclasses.asdict(opts)
    return {k: d[k] for k in TRAINING}


def reset_training_if_changed(work: Path, opts: AdaptOptions, log) -> None:
    """Keep ``work/train`` only when it was trained with these settings; otherwise remove
    it (the frames and labels stay) and say so. A run that failed before training leaves
    no state: the next run simply trains."""
    state_file = work / "train_state.json"
    state = training_state(opts)
    old = None
    if state_file.is_file():
        try:
            old = json.loads(state_file.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
    if old is not None and old != state and (work / "train").exists():
        changed = sorted(k for k in state if old.get(k) != state[k])
        log(f"adapt: training settings changed ({', '.join(changed)}); training again "
            "(frames and labels kept)")
        shutil.rmtree(work / "train")
    state_file.write_text(json.dumps(state, indent=1))


def footage_hashes(footage: list[str]) -> list[dict[str, str]]:
    """[{"path", "sha256"}] of each footage file / folder (by content)."""
    from edgepose.data.footage import file_digest

    return [{"path": str(f), "sha256": file_digest(f)} for f in footage]


def fingerprint(opts: AdaptOptions, base: BaseModel, hashes: list[dict]) -> dict[str, Any]:
    """What a work folder was made from: reused only for the same inputs (every option
    but :data:`NOT_FINGERPRINTED`, the footage by content, the base by path)."""
    kept = {k: v for k, v in dataclasses.asdict(opts).items() if k not in NOT_FINGERPRINTED}
    return {**kept, "footage": hashes, "base": str(base.checkpoint)}


def prepare_work(work: Path, state: dict[str, Any], fresh: bool = False) -> Path:
    """Create (or reuse) ``work`` for ``state``; ConfigError when it holds another
    adaptation or is not an adapt folder. ``fresh``: delete it first."""
    state_file = work / STATE_FILE
    if work.exists() and fresh:
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

"""Step 3: fine-tune the base model on the footage's training frames mixed with replayed
real data, through the normal trainer (resumable from the work folder's ``last.pt``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from edgepose.app.adapting.base_model import BaseModel
from edgepose.app.adapting.options import ADAPT_AUG, AdaptOptions, split_pair


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
    # a short clip may label fewer people than one batch: the batch shrinks to fit
    batch = opts.batch_size if replay else max(1, min(opts.batch_size, n_train))
    per_epoch = max(int(round(n_train * (1 + (opts.replay_ratio if replay else 0)))), batch)
    cfg.model.pretrained = False
    cfg.model.init = str(base.checkpoint)
    cfg.data = dataclasses.replace(cfg.data, train_ann="", train_images="", val_ann="",
                                   val_images="", sources=sources, epoch_samples=per_epoch,
                                   workers=0, aug={**cfg.data.aug, **ADAPT_AUG, **opts.aug})
    cfg.optim = dataclasses.replace(cfg.optim, epochs=opts.epochs, lr=opts.lr,
                                    batch_size=batch, warmup_epochs=0.0,
                                    schedule="cosine", freeze_bn=opts.freeze_bn)
    cfg.out, cfg.seed, cfg.threads = str(work / "train"), opts.seed, opts.threads
    cfg.val_every, cfg.save_every, cfg.progress = 0, 1, opts.progress
    cfg.device, cfg.max_steps_per_epoch = "cpu", 0
    return cfg.validate()  # e.g. an unknown --aug key


def fine_tune(cfg, epochs: int) -> Path:
    """Train ``cfg`` to ``epochs`` epochs, resuming from its ``last.pt`` (nothing to do when
    that already holds them); returns ``last.pt``."""
    from edgepose.checkpoint import load_checkpoint
    from edgepose.train import train

    last = Path(cfg.out) / "last.pt"
    done = last.is_file() and int(load_checkpoint(last).get("epoch", -1)) + 1 >= epochs
    if not done:  # an interrupted first epoch left no last.pt: start that run again
        train(cfg, resume=last if last.is_file() else None, overwrite=not last.is_file())
    return last

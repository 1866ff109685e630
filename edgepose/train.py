"""Training loop: one process, or one process per GPU/CPU rank under ``torchrun`` (DDP).

The loop is small on purpose: build (meta, model, data, optimiser, schedule), then for each
epoch: train one pass with a tqdm bar (live loss + lr), validate every ``val_every`` epochs
(PCK@0.05/0.1 and mean pixel error in original-image pixels, summed over ranks), and write
``last.pt`` / ``best.pt`` from rank 0 only (atomic, metadata inside).

The learning rate is a pure function of training progress in *epochs* (see
:class:`edgepose.optim.LRSchedule`, beside the optimiser in :mod:`edgepose.optim`), and the
training sampler's order depends only on (seed, epoch), so a checkpoint resumes exactly —
also on a different number of ranks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgepose.checkpoint import load_checkpoint, save_checkpoint
from edgepose.config import TrainConfig, save_config
from edgepose.data.datasets import build_dataset
from edgepose.distributed import (
    DistEnv, ShardSampler, WeightedEpochSampler, all_reduce_sum, barrier, cleanup,
    init_distributed, pick_device,
)
from edgepose.errors import ConfigError, DataError, ModelError
from edgepose.metadata import ModelMeta
from edgepose.optim import LRSchedule, build_optimizer

# ----------------------------------------------------------------------------- building blocks


class TrainStep(nn.Module):
    """model.forward_train + model.loss as one ``forward``, so DDP sees (and syncs) it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]):
        out = self.model.forward_train(batch["image"], batch)
        return self.model.loss(out, batch)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


def rng_state() -> dict[str, Any]:
    """All three generators' states as tensors and plain values (a checkpoint holds no
    other objects: see edgepose.checkpoint)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                      int(has_gauss), float(cached)),
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any] | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def has_unused_parameters(step: nn.Module, batch: dict[str, Any]) -> bool:
    """One probe forward/backward: does the training loss leave any parameter without a grad?
    (DDP needs ``find_unused_parameters=True`` only then; it costs a graph walk per step.)"""
    import copy

    probe = copy.deepcopy(step)  # leaves the real model's BN statistics untouched
    loss, _ = probe(batch)
    loss.backward()
    return any(p.requires_grad and p.grad is None for p in probe.parameters())


def run_validation(model: nn.Module, loader, env: DistEnv, device: torch.device,
                   progress: bool = False) -> dict[str, float]:
    """PCK@0.05 / PCK@0.1 (bbox max side) and mean px error (original image), all ranks."""
    from edgepose.evaluate import bbox_normaliser, collect_predictions, joint_errors, pck_hits

    p = collect_predictions(model, loader, progress=progress)
    vis = p["visible"] > 0
    err = joint_errors(p["pred"], p["gt"])
    norm = bbox_normaliser(p["bbox"])
    h05, n = pck_hits(p["pred"], p["gt"], p["visible"], norm, 0.05)
    h10, _ = pck_hits(p["pred"], p["gt"], p["visible"], norm, 0.1)
    err_sum, h05, h10, n = all_reduce_sum([float(err[vis].sum()), h05, h10, n], env, device)
    n = max(n, 1.0)
    return {"mean_px_error": err_sum / n, "pck@0.05": h05 / n, "pck@0.1": h10 / n}


# ----------------------------------------------------------------------------- the loop


@dataclass
class TrainState:
    """What a checkpoint restores besides weights: next epoch and best validation score."""

    epoch: int = 0  # next epoch to run
    best: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)


def _restore(path, meta: ModelMeta, model, optimizer, state: TrainState) -> dict[str, Any]:
    payload = load_checkpoint(path)
    meta.check_matches(payload["meta"], what=f"--resume {path}")
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not fit this model ({str(e)[:160]})") from None
    if "optimizer" not in payload:
        raise ModelError(f"{path}: has no optimizer state (not a training checkpoint); "
                         "use it as pretrained weights instead of --resume")
    optimizer.load_state_dict(payload["optimizer"])
    state.epoch = int(payload["epoch"]) + 1
    state.best = float(payload.get("best_metric", -math.inf))
    state.history = list(payload.get("history", []))
    set_rng_state(payload.get("rng"))
    return payload


def init_weights(model: nn.Module, meta: ModelMeta, path) -> None:
    """Start from a checkpoint's whole-model weights (``model.init``: fine-tuning; ``~``
    is the user's home)."""
    from edgepose.checkpoint import load_weights

    path = Path(path).expanduser()
    payload = load_checkpoint(path)
    meta.check_matches(payload["meta"], what=f"model.init {path}")
    load_weights(model, payload, path)


def train(cfg: TrainConfig, resume: str | Path | None = None,
          overwrite: bool = False) -> dict[str, Any]:
    """Run training as configured; returns a summary (history, best, written checkpoints).

    An ``out`` folder that already holds a run is refused unless ``resume`` continues it or
    ``overwrite`` replaces it. Under torchrun each process calls this; only rank 0 logs and
    writes files.
    """
    cfg.validate()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device, DistEnv())
    env = init_distributed(device)
    device = pick_device(cfg.device, env)
    try:
        return _train(cfg, env, device, resume, overwrite)
    finally:
        cleanup(env)


@dataclass
class _Run:
    """Everything one training run holds between epochs (built by :func:`_setup`)."""

    cfg: TrainConfig
    env: DistEnv
    device: torch.device
    meta: ModelMeta
    model: nn.Module
    step_module: nn.Module
    loader: Any
    sampler: Any
    val_loader: Any
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: Any
    use_amp: bool
    state: TrainState
    out: Path
    steps: int
    written: list[str] = field(default_factory=list)


def _check_resume(path, payload: dict, cfg: TrainConfig, schedule: LRSchedule,
                  state: TrainState, env: DistEnv) -> None:
    """Refuse a resume with nothing left to do; say when --epochs re-plans the schedule."""
    if state.epoch >= cfg.optim.epochs:
        raise ConfigError(f"{path} has already trained {state.epoch} epochs and optim.epochs "
                          f"is {cfg.optim.epochs}: nothing to do; give --epochs larger than "
                          f"{state.epoch} to train on")
    before = float((payload.get("scheduler") or {}).get("epochs", cfg.optim.epochs))
    if env.is_main and before != float(cfg.optim.epochs):
        print(f"edgepose train: resuming at epoch {state.epoch + 1}; the {schedule.kind} "
              f"schedule now spans {cfg.optim.epochs} epochs instead of {before:g}, so the "
              f"learning rate moves to {schedule.lr(state.epoch):.3g} (it would have been "
              f"{dataclasses.replace(schedule, epochs=before).lr(state.epoch):.3g})")


BN_CALIBRATION_BATCHES = 8


def calibrate_trunk(body: nn.Module, loader, device: torch.device, batches: int) -> int:
    """Re-estimate the BatchNorm statistics of a trunk whose BatchNorm was folded into its
    weights (MoveNet, ``movenet_*_bn``) on ``batches`` training batches, keeping its
    eval-mode function (``MoveNetTrunk.calibrate_batchnorm``); 0 if it has none."""
    def images():
        for i, batch in enumerate(loader):
            if i >= batches:
                return
            yield batch["image"].to(device)

    return body.calibrate_batchnorm(images())


def _head_start(cfg: TrainConfig, model: nn.Module, loader, env: DistEnv) -> None:
    """``head_start_steps``: NerPE's equal start (fit to MoveNet's own head) before the
    supervised phase; identical on every rank (same seed, same crops)."""
    from edgepose.models.nerpe_start import fit_nerpe_start

    if not isinstance(cfg.model.pretrained, str) or not cfg.model.pretrained:
        raise ConfigError("head_start_steps needs model.pretrained: the imported MoveNet "
                          "weights file whose keypoint head the NerPE head is fitted to")

    def images():
        while True:
            for batch in loader:
                yield batch["image"]

    def log(step, loss, mae):
        if env.is_main:
            print(f"head start {step + 1}/{cfg.head_start_steps}: loss {loss:.5f}, "
                  f"|nerpe - movenet| {mae:.4f}", flush=True)

    with torch.random.fork_rng(devices=[]):
        maes = fit_nerpe_start(model, cfg.model.pretrained, images(), cfg.head_start_steps,
                               lr=cfg.optim.lr, log=log)
    if env.is_main:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        save_checkpoint(Path(cfg.out) / "start.pt", model, cfg.model.to_meta(),
                        config=cfg.to_dict(), start_mae=maes[-10:])


def _setup(cfg: TrainConfig, env: DistEnv, device: torch.device, resume,
           overwrite: bool = False) -> _Run:
    """Model, data loaders, sampler, optimiser, schedule, resume state, DDP wrapping."""
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    from edgepose.models import build_model

    out = Path(cfg.out)
    if not resume and not overwrite:  # before any work: never write over a run silently
        old = [n for n in ("last.pt", "best.pt", "log.jsonl") if (out / n).exists()]
        if old:
            raise ConfigError(f"{out} already holds a run ({', '.join(old)}); pass --resume "
                              f"{out / 'last.pt'} to continue it, --out NEW_FOLDER, or "
                              "--overwrite to replace it")
    seed_everything(cfg.seed)
    meta = cfg.model.to_meta()
    # local inputs first: a missing annotation file must not wait for hub weights
    train_set = build_dataset(cfg.data, meta, train=True)
    val_set = build_dataset(cfg.data, meta, train=False)
    model = build_model(meta, pretrained=cfg.model.pretrained)
    if cfg.model.init:
        init_weights(model, meta, cfg.model.init)
    model = model.to(device)
    bs = cfg.optim.batch_size
    if len(train_set) < bs * env.world_size:
        raise DataError(f"{cfg.data.train_ann or 'data.sources'}: {len(train_set)} samples is "
                        f"fewer than one global batch ({bs} x {env.world_size} ranks); lower "
                        "optim.batch_size (edgepose train --batch-size)")
    # Same (seed, epoch) -> same global order on any world size; drop_last keeps every
    # rank's step count and batch size equal.
    if hasattr(train_set, "source_weights"):
        sampler = WeightedEpochSampler(train_set.source_sizes, train_set.source_weights,
                                       cfg.seed, env, total=cfg.data.epoch_samples)
    else:
        sampler = DistributedSampler(train_set, num_replicas=env.world_size, rank=env.rank,
                                     shuffle=True, seed=cfg.seed, drop_last=True)
    workers = cfg.data.workers
    loader = DataLoader(train_set, batch_size=bs, sampler=sampler, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=device.type == "cuda")
    val_loader = None
    if val_set is not None:
        val_loader = DataLoader(val_set, batch_size=bs, sampler=ShardSampler(len(val_set), env),
                                num_workers=workers)

    schedule = LRSchedule.from_config(cfg.optim, env.world_size)
    optimizer = build_optimizer(model, cfg.optim, schedule.lr(0.0))
    state = TrainState()
    body = getattr(model.backbone, "body", None)
    if not resume and cfg.head_start_steps:
        _head_start(cfg, model, loader, env)
    if not resume and cfg.model.pretrained and hasattr(body, "calibrate_batchnorm"):
        n = calibrate_trunk(body, loader, device, BN_CALIBRATION_BATCHES)
        if env.is_main and n:
            print(f"calibrated the trunk's BatchNorm on {n} training crops", flush=True)
    if resume:
        payload = _restore(resume, meta, model, optimizer, state)
        _check_resume(resume, payload, cfg, schedule, state, env)
    if cfg.sync_bn and env.enabled:
        if device.type != "cuda":
            raise ConfigError("sync_bn: SyncBatchNorm runs only on GPUs; set sync_bn: false "
                              "for CPU (gloo) training")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    step_module: nn.Module = TrainStep(model)
    if env.enabled:
        # Different augmentation draws per rank (weights are identical: DDP broadcasts
        # rank 0's at wrap time). A single process keeps its RNG stream, so it resumes exactly.
        torch.manual_seed(cfg.seed + 7919 * env.rank + state.epoch)
        with torch.random.fork_rng(devices=[]):
            first = to_device(next(iter(loader)), device)
        unused = has_unused_parameters(step_module, first)
        unused = all_reduce_sum([float(unused)], env, device)[0] > 0
        ids = [env.local_rank] if device.type == "cuda" else None
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=ids, find_unused_parameters=unused)
    use_amp = bool(cfg.amp and device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if overwrite and not resume:
            (out / "log.jsonl").unlink(missing_ok=True)
        # the run's resolved config (overrides applied), rerunnable as --config RUN/config.yaml
        save_config(cfg, out / "config.yaml")
    steps = len(loader) if not cfg.max_steps_per_epoch else min(len(loader),
                                                                cfg.max_steps_per_epoch)
    return _Run(cfg, env, device, meta, model, step_module, loader, sampler, val_loader,
                optimizer, schedule, scaler, use_amp, state, out, steps)


def _train_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One pass over the training data; returns the epoch's record (loss, lr, time)."""
    from tqdm import tqdm

    cfg, env, device, steps = run.cfg, run.env, run.device, run.steps
    run.sampler.set_epoch(epoch)
    run.step_module.train()
    if cfg.optim.freeze_bn:  # fine-tuning: BatchNorm keeps the statistics it was trained with
        for m in run.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    loss_sum, n_steps, t0, lr = 0.0, 0, time.perf_counter(), run.schedule.lr(epoch)
    bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", leave=False,
               disable=not (env.is_main and cfg.progress), dynamic_ncols=True)
    for i, batch in enumerate(run.loader):
        if i >= steps:
            break
        lr = run.schedule.lr(epoch + i / steps)
        for g in run.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=run.use_amp):
            loss, _parts = run.step_module(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1} "
                                     f"step {i}; lower optim.lr or enable grad_clip")
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if cfg.optim.grad_clip > 0:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.optim.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        loss_sum += float(loss.detach())
        n_steps += 1
        bar.set_postfix(loss=f"{loss_sum / n_steps:.4f}", lr=f"{lr:.2e}")
        bar.update(1)
    bar.close()
    total, count = all_reduce_sum([loss_sum, n_steps], env, device)
    return {"epoch": epoch + 1, "loss": total / max(count, 1), "lr": lr,
            "epoch_s": time.perf_counter() - t0}


def _end_epoch(run: _Run, epoch: int, record: dict[str, Any]) -> None:
    """Validate when due, keep the best score, log, and write best.pt / last.pt."""
    from tqdm import tqdm

    cfg, env, state = run.cfg, run.env, run.state
    is_last = epoch + 1 == cfg.optim.epochs
    if run.val_loader is not None and (is_last or (cfg.val_every > 0
                                                   and (epoch + 1) % cfg.val_every == 0)):
        record.update(run_validation(model_unwrapped(run.model), run.val_loader, env,
                                     run.device))
    # best = highest val PCK@0.1 (lowest train loss when there is no val set)
    score = record.get("pck@0.1") if run.val_loader is not None else -record["loss"]
    improved = score is not None and score > state.best
    if improved:
        state.best = score
    state.history.append(record)
    if env.is_main:
        with open(run.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        # one line per epoch, also with --no-progress (which only hides the bar)
        tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in record.items()))
    if improved:
        _save(run, "best.pt", epoch)
    if (epoch + 1) % cfg.save_every == 0 or is_last:
        _save(run, "last.pt", epoch)


def _save(run: _Run, name: str, epoch: int) -> None:
    if not run.env.is_main:
        return
    save_checkpoint(run.out / name, model_unwrapped(run.model), run.meta,
                    optimizer=run.optimizer.state_dict(), scheduler=run.schedule.state_dict(),
                    epoch=epoch, config=run.cfg.to_dict(), best_metric=run.state.best,
                    history=run.state.history, rng=rng_state(), world_size=run.env.world_size)
    run.written.append(str(run.out / name))


def _train(cfg: TrainConfig, env: DistEnv, device: torch.device, resume,
           overwrite: bool = False) -> dict[str, Any]:
    run = _setup(cfg, env, device, resume, overwrite)
    t_start = time.perf_counter()
    for epoch in range(run.state.epoch, cfg.optim.epochs):
        _end_epoch(run, epoch, _train_epoch(run, epoch))
    barrier(env)
    return {"history": run.state.history, "best_metric": run.state.best,
            "checkpoints": run.written, "rank": env.rank, "world_size": env.world_size,
            "meta": run.meta, "train_s": time.perf_counter() - t_start}


def model_unwrapped(model: nn.Module) -> nn.Module:
    """The plain PoseModel (strip DDP / TrainStep wrappers)."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, TrainStep)):
        model = model.module if hasattr(model, "module") else model.model
    return model

"""torchrun / DistributedDataParallel plumbing.

``torchrun --nproc_per_node N -m edgepose train --config x.yaml`` sets RANK, WORLD_SIZE and
LOCAL_RANK; :func:`init_distributed` reads them, joins the process group (nccl on CUDA,
gloo on CPU) and returns a :class:`DistEnv`. Without those variables everything runs as a
single process (rank 0 of 1) and no process group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_from_environ() -> DistEnv:
    """The rank layout torchrun put in the environment (1 process when absent)."""
    return DistEnv(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def torch_device(name: str, index: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a torch device; the one check every
    command uses: an unknown name or CUDA without a CUDA GPU is a one-line DeviceError."""
    from edgepose.errors import DeviceError

    text = str(name or "auto").lower()
    base, _, num = text.partition(":")
    if base not in ("auto", "cpu", "cuda") or (num and not num.isdigit()) or \
            (num and base != "cuda"):
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if base == "auto":
        base = "cuda" if torch.cuda.is_available() else "cpu"
    if base == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} asked for but PyTorch sees no CUDA GPU (this "
                          f"torch {torch.__version__} build or driver); use --device cpu")
    idx = int(num) if num else index
    if idx >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: only {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", idx)


def pick_device(name: str, env: DistEnv) -> torch.device:
    """``auto`` -> this rank's GPU when CUDA exists, else CPU (checked by torch_device)."""
    device = torch_device(name, env.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(device: torch.device) -> DistEnv:
    """Join the process group when launched by torchrun; returns the rank layout."""
    env = env_from_environ()
    if env.world_size <= 1:
        return env
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    return DistEnv(env.rank, env.world_size, env.local_rank, backend)


def cleanup(env: DistEnv) -> None:
    """Barrier (so rank 0 finishes writing before others exit) and leave the group."""
    if env.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], env: DistEnv, device: torch.device) -> list[float]:
    """Sum a list of numbers over ranks (float64); identity in a single process."""
    if not env.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation sampler: rank r takes indices r, r + W, r + 2W... (disjoint, no padding),
    so summed metrics over ranks count every sample exactly once."""

    def __init__(self, n: int, env: DistEnv):
        self.indices = list(range(env.rank, n, env.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def scaled_lr(lr: float, scaling: str, world_size: int) -> float:
    """``linear``: lr x world size (global batch grows with ranks); ``none``: unchanged."""
    return lr * world_size if scaling == "linear" else lr


class WeightedEpochSampler(torch.utils.data.Sampler):
    """Training sampler over concatenated sources with per-source weights.

    Each epoch draws ``total`` (default ``sum(sizes)``) indices with replacement, a sample of source ``s``
    with probability ``weight_s / (sum(weights) * size_s)``, from a generator seeded by
    ``(seed, epoch)`` only, then gives rank r every W-th index (equal counts per rank).
    Like :class:`DistributedSampler` the order depends on (seed, epoch), never on the
    number of ranks' history, so a resumed run sees the same samples.
    """

    def __init__(self, sizes: list[int], weights: list[float], seed: int, env: DistEnv,
                 total: int = 0):
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("one weight per source is needed")
        probs = [torch.full((n,), float(w) / n) for n, w in zip(sizes, weights) if n > 0]
        self.probs = torch.cat(probs)
        self.probs /= self.probs.sum()
        self.total = int(total) if total else int(sum(sizes))
        self.seed, self.rank, self.world = int(seed), env.rank, env.world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.total // self.world

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        idx = torch.multinomial(self.probs, self.total, replacement=True, generator=g)
        return iter(idx[self.rank::self.world][: len(self)].tolist())

"""Two real gloo processes on the CPU: disjoint shards, and one DDP step == one big-batch step.

DDP averages gradients over ranks, so with a mean loss one step on 2 ranks x batch b equals a
single-process step on the concatenated 2b batch. BatchNorm would break that (statistics per
rank), so the model here has no normalisation layers at all.
"""

from __future__ import annotations

import os
from pathlib import Path
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from edgepose.config import OptimConfig
from edgepose.distributed import DistEnv, ShardSampler, scaled_lr

K, H, W, N, B = 5, 16, 16, 24, 4


class TinyPose(nn.Module):
    """BN-free stand-in with the PoseModel training interface (forward_train + loss)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8 * (H // 2) * (W // 2), K * 2)

    def forward(self, image):
        xy = self.fc(torch.relu(self.conv(image)).flatten(1)).view(-1, K, 2)
        return xy, torch.ones(xy.shape[:2])

    def forward_train(self, image, batch):
        return {"coords": self(image)[0]}

    def loss(self, out, batch):
        err = ((out["coords"] - batch["keypoints"]) ** 2).sum(-1) * batch["visible"]
        loss = err.mean()
        return loss, {"mse": float(loss.detach())}


class Samples(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(3)
        self.image = torch.randn(N, 3, H, W, generator=g)
        self.kp = torch.rand(N, K, 2, generator=g) * W
        self.vis = (torch.rand(N, K, generator=g) > 0.2).float()

    def __len__(self):
        return N

    def __getitem__(self, i):
        return {"image": self.image[i], "keypoints": self.kp[i], "visible": self.vis[i],
                "index": i}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_step(model: nn.Module, batch: dict, wrap) -> None:
    from edgepose.optim import build_optimizer
    from edgepose.train import TrainStep

    opt = build_optimizer(model, OptimConfig(lr=0.05, weight_decay=0.01), lr=0.05)
    step = wrap(TrainStep(model))
    loss, _ = step(batch)
    opt.zero_grad()
    loss.backward()
    opt.step()


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    from edgepose.distributed import all_reduce_sum, cleanup, init_distributed

    env = init_distributed(torch.device("cpu"))
    assert env.backend == "gloo" and env.world_size == world and env.rank == rank
    data = Samples()
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0,
                                 drop_last=True)
    sampler.set_epoch(1)
    shard = list(sampler)
    batch = next(iter(DataLoader(data, batch_size=B, sampler=sampler)))
    torch.manual_seed(0)
    model = TinyPose()
    _one_step(model, batch, lambda m: nn.parallel.DistributedDataParallel(m))
    total = all_reduce_sum([float(len(shard)), 1.0], env, torch.device("cpu"))
    torch.save({"shard": shard, "batch_index": batch["index"].tolist(),
                "state": model.state_dict(), "total": total,
                "eval_shard": list(ShardSampler(N + 1, env))},
               os.path.join(out_dir, f"rank{rank}.pt"))
    cleanup(env)


@pytest.mark.slow
def test_ddp_two_gloo_ranks_match_single_process_step(tmp_path):
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    r = [torch.load(tmp_path / f"rank{i}.pt", weights_only=False) for i in range(world)]

    # disjoint shards covering the data; evaluation shards cover N + 1 with no padding
    assert not set(r[0]["shard"]) & set(r[1]["shard"]), "ranks saw overlapping samples"
    assert sorted(r[0]["shard"] + r[1]["shard"]) == list(range(N))
    assert sorted(r[0]["eval_shard"] + r[1]["eval_shard"]) == list(range(N + 1))
    assert r[0]["total"] == [float(N), 2.0], r[0]["total"]

    # identical weights on both ranks after the step
    for k, v in r[0]["state"].items():
        torch.testing.assert_close(v, r[1]["state"][k])

    # == a single-process step on the concatenated global batch
    data = Samples()
    idx = r[0]["batch_index"] + r[1]["batch_index"]
    big = {"image": data.image[idx], "keypoints": data.kp[idx], "visible": data.vis[idx]}
    torch.manual_seed(0)
    ref = TinyPose()
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    _one_step(ref, big, lambda m: m)
    moved = 0.0
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(r[0]["state"][k], v, rtol=1e-5, atol=1e-6)
        moved = max(moved, float((v - before[k]).abs().max()))
    assert moved > 1e-3, "the step did not change the weights; the comparison is vacuous"


def test_lr_scaling_and_single_process_env(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    from edgepose.distributed import init_distributed

    env = init_distributed(torch.device("cpu"))
    assert env == DistEnv() and env.is_main and not env.enabled
    assert scaled_lr(1e-3, "linear", 4) == pytest.approx(4e-3)
    assert scaled_lr(1e-3, "none", 4) == pytest.approx(1e-3)


def _train_worker(rank: int, world: int, port: int, cfg_dict: dict, out_dir: str) -> None:
    import json

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from edgepose.config import config_from_dict
    from edgepose.train import train

    res = train(config_from_dict(cfg_dict))
    with open(os.path.join(out_dir, f"result{rank}.json"), "w") as f:
        json.dump({"checkpoints": res["checkpoints"], "history": res["history"],
                   "world_size": res["world_size"]}, f)


@pytest.mark.slow
def test_torchrun_style_training_rank0_writes_and_resumes_on_one_process(synth_coco, tmp_path):
    import json

    from edgepose.checkpoint import load_checkpoint, load_model
    from edgepose.config import TrainConfig
    from edgepose.evaluate import evaluate_model
    from edgepose.data.datasets import build_dataset
    from edgepose.train import train

    cfg = TrainConfig()
    cfg.model.backbone, cfg.model.head, cfg.model.input_size = (
        "mobilenetv3_small_100", "dsnt", (64, 64))
    d = cfg.data
    d.train_ann, d.train_images = str(synth_coco.train_json), str(synth_coco.image_root("train"))
    d.val_ann, d.val_images = str(synth_coco.val_json), str(synth_coco.image_root("val"))
    cfg.optim.epochs, cfg.optim.batch_size, cfg.max_steps_per_epoch = 1, 8, 2
    cfg.out, cfg.progress, cfg.device = str(tmp_path / "run"), False, "cpu"
    mp.spawn(_train_worker, args=(2, _free_port(), cfg.to_dict(), str(tmp_path)), nprocs=2)
    r0, r1 = (json.loads((tmp_path / f"result{i}.json").read_text()) for i in range(2))
    assert r0["world_size"] == r1["world_size"] == 2
    assert r1["checkpoints"] == [], "rank 1 wrote a checkpoint"
    assert sorted(Path(p).name for p in r0["checkpoints"]) == ["best.pt", "last.pt"]
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "best.pt", "config.yaml", "last.pt", "log.jsonl"], list(run.iterdir())
    assert len((run / "log.jsonl").read_text().splitlines()) == 1, "log written twice"
    # validation metrics summed over the two shards == one process over the whole val set
    model, meta = load_model(run / "last.pt")
    whole = evaluate_model(model, build_dataset(cfg.data, meta, train=False), progress=False)
    assert r0["history"][-1]["pck@0.1"] == pytest.approx(whole["pck@0.1"], abs=1e-9)
    for k in ("loss", "pck@0.1", "mean_px_error"):  # reduced: every rank reports the same
        assert r0["history"][-1][k] == r1["history"][-1][k], k
    # resume the 2-rank checkpoint on 1 process
    cfg.optim.epochs = 2
    res = train(cfg, resume=run / "last.pt")
    assert [h["epoch"] for h in res["history"]] == [1, 2]
    ck = load_checkpoint(run / "last.pt")
    assert ck["epoch"] == 1 and ck["world_size"] == 1

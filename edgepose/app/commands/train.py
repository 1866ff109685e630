"""``edgepose train``: train a pose model from a YAML config (single process or torchrun)."""

from __future__ import annotations

import argparse

HELP = """\
Train a pose model. Settings come from a YAML config (see configs/); the flags below
override it. For several GPUs/processes launch through torchrun, e.g.
  torchrun --nproc_per_node 4 -m edgepose train --config configs/coco_resnet18_dsnt_128.yaml
(--batch-size is per process; --lr-scaling linear multiplies the lr by the world size).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a model from a YAML config",
                              description=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True,
                   help="training YAML (e.g. configs/synth_heatmap_64.yaml)")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--batch-size", type=int, help="batch size per process")
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--workers", type=int, help="DataLoader worker processes (0 = main process)")
    p.add_argument("--out", help="output folder for last.pt, best.pt, log.jsonl")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads per process (0 = torch's default: all cores); "
                        "1 helps when the other cores are busy (another run, a benchmark)")
    p.add_argument("--resume", metavar="CKPT", help="continue from a last.pt of the same model")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run already in the --out folder (default: refuse)")
    p.add_argument("--sync-bn", action="store_true", default=None,
                   help="use SyncBatchNorm across ranks under torchrun")
    p.add_argument("--lr-scaling", choices=("none", "linear"), help="scale lr by world size")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set model.head=dsnt "
                        "--set optim.schedule=step (repeatable)")
    return p


def run(args) -> int:
    from edgepose.config import apply_overrides, load_config
    from edgepose.train import train

    cfg = load_config(args.config)
    flags = {
        "optim.epochs": args.epochs, "optim.batch_size": args.batch_size, "optim.lr": args.lr,
        "data.workers": args.workers, "out": args.out, "seed": args.seed,
        "device": args.device, "threads": args.threads, "sync_bn": args.sync_bn,
        "optim.lr_scaling": args.lr_scaling,
        "progress": False if args.no_progress else None,
    }
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.set)
    cfg = apply_overrides(cfg, overrides)
    result = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if result["rank"] == 0:
        last = result["history"][-1] if result["history"] else {}
        print(f"done in {result['train_s']:.0f} s; "
              + " ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float))
              + f"; checkpoints in {cfg.out}")
    return 0

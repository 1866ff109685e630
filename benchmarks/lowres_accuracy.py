"""Low-resolution accuracy: heatmap vs DSNT (vs NerPE) at 64x64 and 128x128 inputs.

Generates a synthetic COCO-format train set and a held-out val set (cached in --data), trains
every (head, input size) pair with the same backbone, seed and budget, evaluates each on the
val set in ORIGINAL-image pixels, and prints a Markdown table (+ a JSON file).

    python benchmarks/lowres_accuracy.py --heads heatmap,dsnt,nerpe --epochs 10

Everything runs on the CPU by default; on a shared 2-core machine timings are noisy, the
accuracy numbers are what this benchmark is for.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


# NerPE sized for a 2-core CPU budget: a training step of the paper-sized head is ~2.5x
# slower here (the MLP runs on 4 x 16 queries per cell per image).
NERPE_CPU_CFG = {"feat_dim": 64, "hidden": [128, 128, 64, 64, 64], "samples_per_cell": 16,
                 "sigma": 0.1}
NERPE_DECODER = {"mode": "progressive", "coarse": 32, "r": 4, "overlap": 2, "steps": 1}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--heads", default="heatmap,dsnt", help="comma list of heatmap,dsnt,nerpe")
    p.add_argument("--sizes", default="64,128", help="comma list of square input sizes")
    p.add_argument("--backbone", default="mobilenetv3_small_100")
    p.add_argument("--stride", type=int, default=8)
    p.add_argument("--train-images", type=int, default=1000)
    p.add_argument("--val-images", type=int, default=200)
    p.add_argument("--image-size", type=int, default=192, help="synthetic image side (px)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--augment", action="store_true", help="train with augmentation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (on a shared 2-core CPU, 1 was ~25x faster than 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--nerpe-cfg", default=json.dumps(NERPE_CPU_CFG),
                   help="NerPE head_cfg as JSON (default: a CPU-sized head; the paper's is "
                        "feat_dim 256, hidden 256-256-128-128-128)")
    p.add_argument("--nerpe-decoder", default=json.dumps(NERPE_DECODER),
                   help="NerPE decoder settings as JSON")
    p.add_argument("--data", default="runs/lowres_bench/data", help="synthetic data cache")
    p.add_argument("--out", default="runs/lowres_bench", help="runs + results.json go here")
    return p.parse_args(argv)


def make_data(args) -> tuple[Path, Path]:
    from edgepose.data.synthetic import generate_coco_dataset

    root = Path(args.data)
    size = (args.image_size, args.image_size)
    out = []
    for split, n in (("train", args.train_images), ("val", args.val_images)):
        ann = root / "annotations" / f"person_keypoints_{split}.json"
        if ann.is_file() and len(json.loads(ann.read_text())["images"]) == n:
            out.append(ann)
            continue
        out.append(generate_coco_dataset(root, n, seed=args.seed, image_size=size, split=split))
    return out[0], out[1]


def run_one(args, head: str, size: int, train_ann: Path, val_ann: Path) -> dict:
    from edgepose.checkpoint import load_model
    from edgepose.config import TrainConfig
    from edgepose.evaluate import evaluate_model
    from edgepose.models.complexity import count_flops, count_parameters
    from edgepose.data.datasets import build_dataset
    from edgepose.train import train

    cfg = TrainConfig()
    m = cfg.model
    m.backbone, m.head, m.stride, m.input_size = args.backbone, head, args.stride, (size, size)
    if head == "nerpe":
        m.head_cfg, m.decoder = json.loads(args.nerpe_cfg), json.loads(args.nerpe_decoder)
    d = cfg.data
    root = Path(args.data) / "images"
    d.train_ann, d.train_images = str(train_ann), str(root / "train")
    d.val_ann, d.val_images = str(val_ann), str(root / "val")
    d.augment = args.augment
    o = cfg.optim
    o.epochs, o.batch_size, o.lr, o.warmup_epochs = args.epochs, args.batch_size, args.lr, 0.5
    cfg.threads = args.threads
    cfg.seed, cfg.device, cfg.val_every, cfg.save_every = args.seed, args.device, 0, args.epochs
    cfg.out = str(Path(args.out) / f"{head}_{size}")
    result = train(cfg.validate())
    model, meta = load_model(Path(cfg.out) / "last.pt")
    val = build_dataset(cfg.data, meta, train=False)
    metrics = evaluate_model(model, val, batch_size=64, json_path=Path(cfg.out) / "eval.json")
    return {
        "head": head, "input": size, "epochs": args.epochs,
        "train_s": round(result["train_s"], 1),
        "final_loss": result["history"][-1]["loss"],
        "params_M": count_parameters(model) / 1e6,
        "gflops": count_flops(model, (size, size)),
        **metrics,
    }


def markdown(rows: list[dict]) -> str:
    cols = [("head", "head", "{}"), ("input", "input", "{0}x{0}"),
            ("mean_px_error", "mean err (orig px)", "{:.2f}"),
            ("pck@0.05", "PCK@0.05", "{:.3f}"), ("pck@0.1", "PCK@0.1", "{:.3f}"),
            ("AP", "OKS AP", "{:.3f}"), ("params_M", "params (M)", "{:.3f}"),
            ("gflops", "GFLOPs", "{:.3f}"), ("train_s", "train (s)", "{:.0f}")]
    lines = ["| " + " | ".join(c[1] for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(f.format(r[k]) for k, _, f in cols) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    train_ann, val_ann = make_data(args)
    rows = []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        for head in args.heads.split(","):
            print(f"== {head} @ {size}x{size}", flush=True)
            rows.append(run_one(args, head.strip(), size, train_ann, val_ann))
            (out / "results.json").write_text(json.dumps(
                {"settings": vars(args), "results": rows}, indent=2))
            print(markdown(rows[-1:]), flush=True)
    print(f"\nbackbone {args.backbone} stride {args.stride}, {args.train_images} train / "
          f"{args.val_images} val synthetic images of {args.image_size}px, {args.epochs} "
          f"epochs, batch {args.batch_size}, lr {args.lr}, "
          f"total {time.perf_counter() - t0:.0f} s\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

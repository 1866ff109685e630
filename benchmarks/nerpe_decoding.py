"""NerPE decoding benchmark: dense vs progressive (NerPE-p) decoding of one trained model.

For a NerPE model at 128x128 input (trained here on synthetic data, or ``--checkpoint``):
dense decoding at 32^2, 64^2, 128^2, 256^2 and progressive decoding reaching 128^2 and
512^2 -> decoder queries, MACs (``decoder_cost``), decode latency (torch, batch 1, median
over repeats, thread count stated) and PCK@0.05 / PCK@0.1 (bbox max side) on a held-out
synthetic set. All decoders run on the *same* feature grids, so only decoding differs.
A second table gives MACs and latency of the paper-sized decoder MLP (feat 256, hidden
256-256-128-128-128; latency does not depend on the weights) for the paper's ratio
(NerPE-p 4.2 vs dense-128 20.8 GFLOPs, whole network).

    python benchmarks/nerpe_decoding.py                       # train ~10 min, then measure
    python benchmarks/nerpe_decoding.py --checkpoint runs/synth_nerpe_128/best.pt
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

DECODERS = {
    "dense 32": {"mode": "dense", "resolution": 32},
    "dense 64": {"mode": "dense", "resolution": 64},
    "dense 128": {"mode": "dense", "resolution": 128},
    "dense 256": {"mode": "dense", "resolution": 256},
    "prog 32x4 (->128)": {"mode": "progressive", "coarse": 32, "r": 4, "overlap": 2, "steps": 1},
    "prog 8x4x4 (->128)": {"mode": "progressive", "coarse": 8, "r": 4, "overlap": 2, "steps": 2},
    "prog 32x4x4 (->512)": {"mode": "progressive", "coarse": 32, "r": 4, "overlap": 2,
                            "steps": 2},
}
PAPER_HEAD = {"feat_dim": 256, "hidden": [256, 256, 128, 128, 128]}


@dataclass
class BenchOptions:
    checkpoint: str | None = None
    data: str | None = None  # synthetic COCO folder; generated when missing
    train_images: int = 400
    val_images: int = 64
    epochs: int = 10
    batch_size: int = 16
    threads: int = 1
    repeats: int = 15
    out: str = "runs/nerpe_decoding"  # results.json, results.md, data/, train/
    train_threads: int = 2
    backbone: str = "mobilenetv3_small_100"


def ensure_data(root: Path, o: BenchOptions) -> None:
    from edgepose.data.synthetic import generate_coco_dataset

    for split, n in (("train", o.train_images), ("val", o.val_images)):
        if not (root / "annotations" / f"person_keypoints_{split}.json").is_file():
            generate_coco_dataset(root, n, seed=1, image_size=(160, 160), split=split)


def train_model(root: Path, o: BenchOptions) -> str:
    """CPU-sized NerPE for a few epochs: mobilenetv3_small stride 8 (resnet18 costs ~8x
    more per step on a shared 2-core CPU), narrow MLP, 16 queries per cell, sigma 0.1."""
    from edgepose.config import config_from_dict
    from edgepose.train import train

    out = Path(o.out) / "train"
    cfg = config_from_dict({
        "model": {"backbone": o.backbone, "head": "nerpe", "stride": 8,
                  "input_size": [128, 128],
                  "head_cfg": {"feat_dim": 64, "hidden": [128, 128, 64, 64, 64],
                               "samples_per_cell": 16, "sigma": 0.1},
                  "decoder": {"mode": "dense", "resolution": 64}},
        "data": _data_cfg(root),
        "optim": {"epochs": o.epochs, "batch_size": o.batch_size, "lr": 3e-3,
                  "warmup_epochs": 0.5},
        "val_every": 1000, "out": str(out), "device": "cpu", "seed": 0,
    }, source="benchmark")
    torch.set_num_threads(o.train_threads)
    train(cfg)
    return str(out / "last.pt")


def _data_cfg(root: Path) -> dict:
    return {"train_ann": str(root / "annotations/person_keypoints_train.json"),
            "train_images": str(root / "images/train"),
            "val_ann": str(root / "annotations/person_keypoints_val.json"),
            "val_images": str(root / "images/val"), "augment": True}


@torch.no_grad()
def decode_all(model, loader) -> dict[str, dict[str, float]]:
    """PCK of every decoder on the same feature grids."""
    from edgepose.coords import norm_to_pixel
    from edgepose.evaluate import bbox_normaliser, pck
    from edgepose.topdown import crop_to_image

    h, w = model.meta.input_size
    preds = {name: [] for name in DECODERS}
    gts, vis, boxes = [], [], []
    for batch in loader:
        grid = model.head.feature_grid(model.backbone(batch["image"].float()))
        for name, d in DECODERS.items():
            model.head.set_decoder(d)
            peak, _ = model.head.decode_grid(grid)
            px = torch.stack([norm_to_pixel(peak[..., 0], w), norm_to_pixel(peak[..., 1], h)],
                             -1).numpy()
            preds[name].append(crop_to_image(px, batch["affine"].numpy()))
        kpi = batch["keypoints_image"].numpy()
        gts.append(kpi[..., :2])
        vis.append((kpi[..., 2] > 0).astype(np.float32))
        boxes.append(batch["bbox"].numpy().reshape(-1, 4))
    gt, v, norm = np.concatenate(gts), np.concatenate(vis), bbox_normaliser(np.concatenate(boxes))
    return {name: {"pck@0.05": pck(np.concatenate(p), gt, v, norm, 0.05),
                   "pck@0.1": pck(np.concatenate(p), gt, v, norm, 0.1)}
            for name, p in preds.items()}


@torch.no_grad()
def latency_ms(head, grid: torch.Tensor, repeats: int) -> float:
    """Median decode time (ms) of ``head.decode_grid`` on one grid, after 2 warm-ups."""
    from edgepose.engines.timing import latency_stats, time_each

    for _ in range(2):
        head.decode_grid(grid)
    return latency_stats(time_each(lambda: head.decode_grid(grid), repeats))["median"]


def cost(head, d: dict) -> dict[str, int]:
    from edgepose.models.nerpe_decoding import DecoderSettings, decoder_cost

    s = DecoderSettings.from_dict(d)
    gh, gw = head.grid_hw
    return decoder_cost(head.num_joints, head.cfg.hidden, head.cfg.feat_dim, head.mlp.pos_dim,
                        mode=s.mode, resolution=s.resolution, coarse=s.coarse, r=s.r,
                        overlap=s.overlap, steps=s.steps, cells=gh * gw)


def measure(o: BenchOptions) -> dict:
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from edgepose.checkpoint import load_model
    from edgepose.models.nerpe import NerPEHead
    from edgepose.data.datasets import build_dataset

    root = Path(o.data or Path(o.out) / "data")
    ensure_data(root, o)
    ckpt = o.checkpoint or train_model(root, o)
    torch.set_num_threads(o.threads)
    model, meta = load_model(ckpt)
    from edgepose.config import DataConfig

    val = build_dataset(DataConfig(**{**_data_cfg(root), "augment": False}), meta, train=False)
    acc = decode_all(model, DataLoader(val, batch_size=4, shuffle=False))
    x = val[0]["image"][None].float()
    with torch.no_grad():
        grid = model.head.feature_grid(model.backbone(x))
    paper = NerPEHead(model.backbone.out_channels, model.backbone.stride, meta.input_size,
                      meta.num_joints, **PAPER_HEAD).eval()
    paper_grid = torch.randn(1, 256, *paper.grid_hw)
    rows = []
    for name, d in tqdm(DECODERS.items(), desc="latency"):
        model.head.set_decoder(d)
        paper.set_decoder(d)
        c, pc = cost(model.head, d), cost(paper, d)
        rows.append({"decoder": name, "settings": d, "queries": c["queries"],
                     "macs": c["macs"], "latency_ms": latency_ms(model.head, grid, o.repeats),
                     **acc[name], "paper_mlp_macs": pc["macs"],
                     "paper_mlp_macs_naive": pc["macs_naive"],
                     "paper_mlp_latency_ms": latency_ms(paper, paper_grid, max(3, o.repeats // 3))})
    return {"checkpoint": str(ckpt), "model": meta.name, "head_cfg": meta.head_cfg,
            "threads": o.threads, "val_images": len(val), "torch": torch.__version__,
            "options": asdict(o), "rows": rows}


def markdown(res: dict) -> str:
    ref = next(r for r in res["rows"] if r["decoder"] == "dense 128")
    lines = [
        f"NerPE decoding, {res['model']} (head {res['head_cfg']}), torch "
        f"{res['torch']}, {res['threads']} thread(s), batch 1, {res['val_images']} val crops",
        "",
        "| decoder | queries | MMACs | vs dense 128 | latency ms | PCK@0.05 | PCK@0.1 "
        "| paper-MLP GMACs | paper-MLP ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['decoder']} | {r['queries']} | {r['macs'] / 1e6:.1f} | "
            f"{r['macs'] / ref['macs']:.3f} | {r['latency_ms']:.2f} | {r['pck@0.05']:.3f} | "
            f"{r['pck@0.1']:.3f} | {r['paper_mlp_macs'] / 1e9:.3f} | "
            f"{r['paper_mlp_latency_ms']:.1f} |")
    prog = next(r for r in res["rows"] if r["decoder"] == "prog 32x4 (->128)")
    lines += ["", f"NerPE-p (32x4 -> 128) / dense 128: MACs x{prog['macs'] / ref['macs']:.3f}, "
              f"latency x{prog['latency_ms'] / ref['latency_ms']:.3f}, "
              f"PCK@0.05 {prog['pck@0.05'] - ref['pck@0.05']:+.3f} "
              f"(paper: 4.2 / 20.8 GFLOPs = x0.20 for the whole network, <= 0.3 PCKh lost)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", help="trained NerPE checkpoint (default: train one here)")
    p.add_argument("--data", help="synthetic dataset folder (made if missing)")
    p.add_argument("--epochs", type=int, default=BenchOptions.epochs)
    p.add_argument("--train-images", type=int, default=BenchOptions.train_images)
    p.add_argument("--val-images", type=int, default=BenchOptions.val_images)
    p.add_argument("--threads", type=int, default=BenchOptions.threads)
    p.add_argument("--repeats", type=int, default=BenchOptions.repeats)
    p.add_argument("--train-threads", type=int, default=BenchOptions.train_threads)
    p.add_argument("--backbone", default=BenchOptions.backbone, help="backbone when training")
    p.add_argument("--out", default=BenchOptions.out,
                   help="folder for results.json / results.md (+ data/ and train/)")
    a = p.parse_args(argv)
    o = BenchOptions(checkpoint=a.checkpoint, data=a.data, train_images=a.train_images,
                     val_images=a.val_images, epochs=a.epochs, threads=a.threads,
                     repeats=a.repeats, out=a.out, train_threads=a.train_threads,
                     backbone=a.backbone)
    res = measure(o)
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    table = markdown(res)
    (out / "results.md").write_text(table + "\n")
    print(table)
    print(f"\nsaved {out / 'results.json'} and {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

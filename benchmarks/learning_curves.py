"""Learning curves: validation PCK@0.05 against samples seen, one line per training run.

    python benchmarks/learning_curves.py \
        --run "DSNT-128=~/.cache/edgepose-runs/real_movenet_dsnt_128" \
        --start "DSNT-128=/tmp/starts/dsnt-learned-t-128.pt" \
        --ref "heatmap-128 (bundled)=heatmap-128"

Each run folder holds ``log.jsonl`` (``edgepose train``: the validation metrics every
``val_every`` epochs) and ``config.yaml`` (``data.epoch_samples``: people per epoch). A
``--start`` checkpoint (the head before any supervised step) is evaluated here on the same
validation set and drawn at 0 samples; a ``--ref`` model (file or bundled name) is drawn
as a horizontal line. The validation set is the runs' own (coco-mini val2017, 68 people;
PCK of the box's longer side). A curve still climbing at its end says "more budget"; a
flat one says "the design". Writes ``docs/images/learning_curves.png`` and
``benchmarks/results/learning_curves.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_curve(folder: Path) -> tuple[list[int], list[float], dict]:
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    per_epoch = int(cfg["data"].get("epoch_samples") or 0)
    xs, ys = [], []
    for line in (folder / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "pck@0.05" in rec:
            xs.append(int(rec["epoch"]) * per_epoch)
            ys.append(float(rec["pck@0.05"]))
    return xs, ys, cfg


def evaluate(model: str, val_ann: str, val_images: str) -> float:
    """Validation PCK@0.05 of a model file / bundled name via ``edgepose eval``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.json"
        subprocess.run([sys.executable, "-m", "edgepose", "eval", str(model), "--data", val_ann,
                        "--images", val_images, "--json", str(out), "--no-progress",
                        "--device", "cpu"], check=True, cwd=ROOT, capture_output=True)
        return float(json.loads(out.read_text())["pck@0.05"])


def pairs(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        label, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected LABEL=VALUE, got {item!r}")
        out.append((label, str(Path(value).expanduser()) if "/" in value else value))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", default=[], metavar="LABEL=DIR")
    ap.add_argument("--start", action="append", default=[], metavar="LABEL=CKPT")
    ap.add_argument("--ref", action="append", default=[], metavar="LABEL=MODEL")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "images" / "learning_curves.png")
    ap.add_argument("--json", type=Path,
                    default=ROOT / "benchmarks" / "results" / "learning_curves.json")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, val = {}, None
    for label, folder in pairs(args.run):
        xs, ys, cfg = run_curve(Path(folder))
        runs[label] = {"samples": xs, "pck@0.05": ys, "folder": folder,
                       "input": cfg["model"]["input_size"], "head": cfg["model"]["head"]}
        val = val or (cfg["data"]["val_ann"], cfg["data"]["val_images"])
    if val is None:
        raise SystemExit("give at least one --run")
    val = tuple(str((ROOT / v).resolve()) if not Path(v).is_absolute() else v for v in val)
    starts = {label: evaluate(ckpt, *val) for label, ckpt in pairs(args.start)}
    refs = {label: evaluate(model, *val) for label, model in pairs(args.ref)}
    fig, ax = plt.subplots(figsize=(9.5, 4.5), dpi=110)
    palette = plt.get_cmap("tab20").colors  # distinct colours for up to 20 lines
    for i, (label, r) in enumerate(runs.items()):
        xs, ys = list(r["samples"]), list(r["pck@0.05"])
        if label in starts:
            xs, ys = [0] + xs, [starts[label]] + ys
            r["start"] = starts[label]
        ax.plot([x / 1000 for x in xs], ys, marker="os^"[i // 7 % 3], label=label,
                color=palette[i % 20])
    for j, (label, v) in enumerate(refs.items()):
        ax.axhline(v, linestyle="--", color=palette[(len(runs) + j) % 20],
                   label=f"{label}: {v:.3f}")
    ax.set_xlabel("people seen in training (thousands)")
    ax.set_ylabel("validation PCK@0.05 (coco-mini val, 68 people)")
    ax.set_title("Heads on MoveNet's trunk, one CPU thread each")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png)
    args.json.write_text(json.dumps({"runs": runs, "refs": refs, "val": val}, indent=1))
    print(json.dumps({"runs": {k: v["pck@0.05"] for k, v in runs.items()}, "refs": refs,
                      "starts": starts}, indent=1))


if __name__ == "__main__":
    main()

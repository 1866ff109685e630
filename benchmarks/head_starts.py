"""Each head's start on MoveNet's trunk, before any supervised step, next to MoveNet's own head.

    python benchmarks/head_starts.py --size 128 \
        --nerpe-start ~/.cache/edgepose-runs/real_movenet_nerpe_128/start.pt [--threads 1]

Issue 29 asks for equal starts: every head begins from what MoveNet knows. This writes, at
one input size, untrained checkpoints of the heatmap head (MoveNet's kpt_heatmap_0 as is),
DSNT with the fixed x4 logits (earlier rounds), DSNT with the learned temperature (this
round; starts at x4, so it equals the fixed one before training), takes the NerPE start
fitted by ``head_start_steps`` (``start.pt`` of a run), and MoveNet Lightning's own head
and decode at the same input size; then scores them all with ``real_accuracy.py`` on the
real sets (LSP test, COCO val subsets; ground-truth boxes). Writes
``benchmarks/results/head_starts/<size>/results.{json,md}``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_starts(size: int, out: Path) -> dict[str, Path]:
    """Untrained MoveNet-started heatmap / DSNT checkpoints and MoveNet's own head at
    ``size``; returns label -> checkpoint."""
    import yaml

    from edgepose.checkpoint import save_checkpoint
    from edgepose.config import config_from_dict
    from edgepose.models import build_model, movenet_import

    mn = movenet_import.imported_file("movenet_lightning", ".safetensors")
    made = {}
    for label, cfg_name, tweak in (
            ("heatmap", "real_movenet_heatmap_128.yaml", {}),
            ("dsnt-x4", "real_movenet_dsnt_128.yaml", {"learn_temperature": False}),
            ("dsnt-learned-t", "real_movenet_dsnt_128.yaml", {"learn_temperature": True})):
        d = yaml.safe_load((ROOT / "configs" / cfg_name).read_text())
        d["model"]["input_size"] = [size, size]
        d["model"]["head_cfg"].update(tweak)
        meta = config_from_dict(d).model.to_meta()
        model = build_model(meta, pretrained=str(mn))
        assert model.head_init.startswith("movenet kpt_heatmap_0"), model.head_init
        path = out / f"{label}-{size}.pt"
        save_checkpoint(path, model, meta)
        made[label] = path
    own, meta = movenet_import.load_imported("movenet_lightning", input_size=(size, size))
    path = out / f"movenet-head-{size}.pt"
    save_checkpoint(path, own, meta)
    made["movenet-own-head"] = path
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--nerpe-start", type=Path, action="append", default=[],
                    help="start.pt of a NerPE run with head_start_steps (repeatable)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        made = write_starts(args.size, Path(tmp))
        specs = [f"{k}-{args.size}={v}" for k, v in made.items()]
        for p in args.nerpe_start:
            specs.append(f"nerpe-p-start-{args.size}={p.expanduser()}")
        cmd = [sys.executable, str(ROOT / "benchmarks" / "real_accuracy.py"),
               "--threads", str(args.threads), "--shared", str(args.shared),
               "--latency-crops", "20",
               "--out", str(ROOT / "benchmarks" / "results" / "head_starts" / str(args.size))]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        for s in specs:
            cmd += ["--model", s]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()

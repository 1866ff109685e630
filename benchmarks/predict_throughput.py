"""`edgepose predict` throughput: images per second with 1 and 8 crops per model call.

    python benchmarks/predict_throughput.py [--images ../shared/data/lsp/images] [--n 300]

Runs the bundled model (ONNX Runtime, --threads) through the Python API's cross-image
batching on the first N images, batch 1 and batch 8 interleaved over 3 rounds; median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import edgepose
    from edgepose.engines.timing import time_loop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "lsp" / "images")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "predict")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    files = sorted(args.images.glob("*.jpg"))[: args.n]
    images = [cv2.imread(str(f)) for f in files]
    model = edgepose.load(threads=args.threads)
    rates = {1: [], 8: []}
    for _ in range(3):
        for b in (1, 8):
            rates[b].append(len(images) / time_loop(lambda: model.predict_many(images, batch=b), 1))
    res = {"model": model.path.name, "images": len(images), "threads": args.threads,
           "images_per_s": {str(b): statistics.median(r) for b, r in rates.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predict.json").write_text(json.dumps(res, indent=2) + "\n")
    line = (f"{res['model']}, {len(images)} LSP images, ONNX Runtime {args.threads} thread: "
            f"{res['images_per_s']['1']:.0f} images/s at batch 1, "
            f"{res['images_per_s']['8']:.0f} at batch 8 (median of 3)")
    (args.out / "predict.md").write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

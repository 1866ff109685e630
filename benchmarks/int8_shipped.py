"""INT8 CPU preset of every shipped model: accuracy lost against its FP32 file.

    python benchmarks/int8_shipped.py [--models heatmap-128,dsnt-64,...] [--threads 1]

For each bundled model by name: ``edgepose calibrate MODEL --target cpu`` (asymmetric uint8
activations, what ONNX Runtime's x86 kernels run; the head's last conv and decoder stay
float) on 256 person crops of the LSP training set, then the FP32 and INT8 files compared
by the same command on LSP's 1000 test people (``data/real/lsp_test.json``, never trained
on): PCK@0.05 / PCK@0.1 (box normaliser), batch-1 latency, interleaved. Goal (issue 29):
INT8 within 1 point PCK@0.05 of FP32. Writes ``benchmarks/results/int8_shipped/results.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main(argv=None) -> int:
    from edgepose.app.cli import main as cli
    from edgepose.bundled import ASSETS, NAMED_MODELS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(NAMED_MODELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calib", type=Path, default=ROOT / "data/real/lsp_train.json")
    ap.add_argument("--eval", type=Path, default=ROOT / "data/real/lsp_test.json")
    ap.add_argument("--images", type=Path, default=SHARED / "lsp" / "images")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/int8_shipped")
    args = ap.parse_args(argv)
    for f in (args.calib, args.eval):
        if not f.is_file():
            sys.exit(f"{f}: not found; make it with scripts/make_real_model.sh (HEADS=\"\")")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            report = Path(tmp) / f"{name}.json"
            rc = cli(["calibrate", str(ASSETS / NAMED_MODELS[name]), "--data", str(args.calib),
                      "--data-images", str(args.images), "--target", "cpu",
                      "--out", str(Path(tmp) / f"{name}.int8.onnx"),
                      "--eval-data", str(args.eval), "--eval-images", str(args.images),
                      "--threads", str(args.threads), "--report", str(report),
                      "--no-progress"])
            if rc != 0:
                sys.exit(f"calibrate {name} failed ({rc})")
            rows.append({"model": name, **json.loads(report.read_text())})
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "threads": args.threads, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    lines = [f"FP32 vs INT8 (CPU preset) of each shipped model; LSP test, 1000 people; ONNX "
             f"Runtime {args.threads} thread; {result['machine']}.", "",
             "| model | FP32 PCK@0.05 | INT8 PCK@0.05 | change (points) | FP32 PCK@0.1 | "
             "INT8 PCK@0.1 | FP32 ms | INT8 ms |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f, q = r["fp32"], r["int8"]
        lines.append(f"| {r['model']} | {f['pck@0.05']:.3f} | {q['pck@0.05']:.3f} | "
                     f"{100 * (q['pck@0.05'] - f['pck@0.05']):+.1f} | {f['pck@0.1']:.3f} | "
                     f"{q['pck@0.1']:.3f} | {f['latency_ms']:.2f} | {q['latency_ms']:.2f} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

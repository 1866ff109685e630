#!/usr/bin/env bash
# Reproduces edgepose/assets/demo.onnx, the small model `edgepose demo` ships with.
# It knows synthetic figures only (see README). About 15-25 min on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
edgepose synth data/demo --num 2000 --val 200 --seed 1 --size 192
edgepose train --config configs/demo_model.yaml --overwrite
# Written beside the run, not over the shipped file; copy it to edgepose/assets/demo.onnx
# (or set OUT=edgepose/assets/demo.onnx) to replace the bundled synthetic model.
OUT=${OUT:-runs/demo_model/demo.onnx}
edgepose export runs/demo_model/best.pt --out "$OUT"
echo "wrote $OUT"

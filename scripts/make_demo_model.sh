#!/usr/bin/env bash
# Reproduces edgepose/assets/demo.onnx, the small model `edgepose demo` ships with.
# It knows synthetic figures only (see README). About 15-25 min on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
edgepose synth data/demo --num 2000 --val 200 --seed 1 --size 192
edgepose train --config configs/demo_model.yaml
edgepose export runs/demo_model/best.pt --out edgepose/assets/demo.onnx

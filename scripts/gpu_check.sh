#!/usr/bin/env bash
# One command for a machine with CUDA + TensorRT + pycuda (a lent GPU, a user's Jetson):
# runs the gpu tests, then builds FP32 / FP16 / INT8 engines of the bundled model and writes
# a table (engine vs ONNX Runtime max / median px difference, batch-1 latency, batch-8
# throughput) to OUT/gpu_check.md. Sized for < 10 minutes; a Jetson build may take longer
# per engine (BUILD_TIMEOUT, default 600 s each).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
MODEL=${MODEL:-$(python -c "import edgepose; print(edgepose.ASSETS / 'demo.onnx')")}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-600}
mkdir -p "$OUT"
python -c "from edgepose.engines.versions import tensorrt_unavailable_reason as r; import sys; m = r(); print(m or 'TensorRT ready'); sys.exit(1 if m else 0)" || exit 2
python -m pytest -q -m gpu tests/engines tests/calibration 2>&1 | tee "$OUT/pytest_gpu.txt" | tail -5
# INT8 calibration data: CALIB, else the real COCO val subset of ../shared/data, else
# 64 synthetic figures written here
if [ -z "${CALIB:-}" ]; then
  CALIB=../shared/data/coco-mini/annotations/person_keypoints_val2017.json
  if [ ! -f "$CALIB" ]; then
    edgepose synth "$OUT/calib" --num 64 --val 0 --size 160 > /dev/null
    CALIB="$OUT/calib/annotations/person_keypoints_train.json"
  fi
fi
for p in fp32 fp16 int8; do
  extra=()
  [ "$p" = int8 ] && extra=(--calib-data "$CALIB")
  timeout "$BUILD_TIMEOUT" edgepose build "$MODEL" --precision "$p" --max-batch 8 --opt-batch 1 \
      --timing-cache "$OUT/timing.cache" --out "$OUT/model.$p.engine" "${extra[@]}" --no-progress \
      2>&1 | tail -2 | tee -a "$OUT/builds.txt"
done
python - "$MODEL" "$OUT" <<'PY'
import sys, time, statistics
from pathlib import Path
import numpy as np
from edgepose.engines.backend import load_backend
from edgepose.engines import export as ex
model, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = ["| engine | max px diff | median px diff | batch-1 ms (median) | batch-8 img/s |",
        "|---|---|---|---|---|"]
with load_backend(model, device="cpu") as ref:
    meta = ref.meta
    x8 = ex.synthetic_images(meta, 8)
    want = ref(x8)["coords"]
for p in ("fp32", "fp16", "int8"):
    eng = out / f"model.{p}.engine"
    if not eng.is_file():
        rows.append(f"| {p} | build failed (see builds.txt) | | | |")
        continue
    with load_backend(eng) as b:
        b.warmup(10, 1)
        d = np.abs(b(x8)["coords"] - want).max(-1)
        lat = []
        for _ in range(200):
            t0 = time.perf_counter(); b(x8[:1]); lat.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        for _ in range(50):
            b(x8)
        tput = 50 * 8 / (time.perf_counter() - t0)
    rows.append(f"| {p} | {d.max():.3f} | {np.median(d):.3f} | {statistics.median(lat):.3f} | {tput:.0f} |")
text = f"{model.name}, {meta.input_size[0]}x{meta.input_size[1]}\n\n" + "\n".join(rows) + "\n"
(out / "gpu_check.md").write_text(text)
print(text)
PY

"""The deployment path (realtime app + ONNX Runtime / TensorRT backends) must not need torch,
so a Jetson with only JetPack's TensorRT, OpenCV and onnxruntime can run engines."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import edgepose.realtime.runner, edgepose.engines.trt_backend, edgepose.engines.trt_build
import edgepose.engines.plan_format
import edgepose.app.commands.run, edgepose.app.commands.demo
from edgepose.engines import load_backend
with load_backend(sys.argv[1], threads=1) as b:
    b.warmup(1)
heavy = sorted(m for m in ("torch", "timm", "torchvision") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_running_an_exported_model_does_not_import_torch():
    model = ROOT / "edgepose" / "assets" / "demo.onnx"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(model)], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "none", f"imported: {out.stdout.strip()}"

"""Where the files edgepose ships live, and which bundled model is the default.

Importable from every layer (core), without importing the package root (which offers the
app layer's ``edgepose.load``). ``edgepose run`` / ``demo``, ``edgepose.load()`` and
``edgepose adapt`` use :data:`DEFAULT_MODEL` when no model is given.
"""

from pathlib import Path

# Bundled models and images (package data), wherever edgepose is installed.
ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_MODEL = ASSETS / "demo.onnx"  # trained on synthetic figures (--source synthetic)
# The real-people model, when this install bundles it.
REAL_MODEL = ASSETS / "real_heatmap_128.onnx"
DEFAULT_MODEL = REAL_MODEL if REAL_MODEL.is_file() else DEMO_MODEL

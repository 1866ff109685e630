"""edgepose: real-time low-resolution human pose estimation.

Layers (DESIGN.md; enforced by import-linter, see pyproject.toml), imports only downward:

    edgepose.app          the CLI, its commands, profiling
    edgepose.realtime     the live pipeline          edgepose.calibration  INT8
    edgepose.engines      export, backends, TensorRT build
    edgepose (core)       skeleton, coords, metadata, preprocess, models, data, train, ...

``engines/``, ``calibration/`` and ``realtime/`` sit at the repository's top level and
install as ``edgepose.engines`` etc. (nothing is installed under those bare names).
"""

from pathlib import Path

__version__ = "0.1.0"

# Bundled models and images (package data), wherever edgepose is installed.
ASSETS = Path(__file__).resolve().parent / "assets"

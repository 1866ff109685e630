"""edgepose: real-time low-resolution human pose estimation.

Layers (DESIGN.md; enforced by import-linter, see pyproject.toml), imports only downward:

    edgepose.app          the CLI, its commands, profiling
    edgepose.realtime     the live pipeline          edgepose.calibration  INT8
    edgepose.engines      export, backends, TensorRT build
    edgepose (core)       skeleton, coords, metadata, preprocess, pose, models, data, ...

``engines/``, ``calibration/`` and ``realtime/`` sit at the repository's top level and
install as ``edgepose.engines`` etc. (nothing is installed under those bare names).
"""

from edgepose.bundled import ASSETS
from edgepose.version import __version__

__all__ = ["ASSETS", "__version__", "load", "Pose", "PoseEstimator"]


def __getattr__(name: str):
    """``edgepose.load`` / ``edgepose.Pose`` without importing the app layer on
    ``import edgepose`` (the deployment path stays light)."""
    if name == "Pose":  # the one result type of predict, track and the live pipeline
        from edgepose.pose import Pose

        return Pose
    if name in ("load", "PoseEstimator"):
        from edgepose.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgepose' has no attribute {name!r}")

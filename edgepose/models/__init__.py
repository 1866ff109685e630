"""Pose networks: a timm backbone + one head (heatmap, dsnt or nerpe).

``build_model(meta)`` is the only constructor other layers use.
"""

from edgepose.models.pose_model import PoseModel, build_model

__all__ = ["PoseModel", "build_model"]

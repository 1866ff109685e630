"""The one tiny ModelMeta builder of the test suite (each test package's helper module binds
its own defaults with functools.partial: calibration a 'tiny-test' TinyPose, realtime a
'standin' backend, models/engines a narrow resnet18)."""

from __future__ import annotations

from edgepose.metadata import ModelMeta


def tiny_meta(head: str = "dsnt", backbone: str = "resnet18", size=(64, 64), stride: int = 8,
              name: str = "", decoder: dict | None = None, **head_cfg) -> ModelMeta:
    """ModelMeta for a tiny test model; ``head_cfg`` keeps the head small."""
    return ModelMeta(head=head, backbone=backbone, input_size=tuple(size), stride=stride,
                     head_cfg=dict(head_cfg), decoder=dict(decoder or {}), name=name)

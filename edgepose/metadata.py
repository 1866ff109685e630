"""Model metadata: the JSON dict every artifact carries (checkpoint, ONNX, TensorRT plan).

Loading any artifact rebuilds preprocessing and rendering from this dict, so a model can
never be fed the wrong input size, normalisation or colour order, and the renderer always
knows the joint names and limbs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from edgepose.version import __version__
from edgepose.errors import ModelError
from edgepose.skeleton import get_skeleton

FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# edgepose's own heads (trainable); "movenet" is MoveNet's own heads and decode on its trunk
# (imported, inference only: the peer row, the teacher, a fallback model)
TRAINABLE_HEADS = ("heatmap", "dsnt", "nerpe")
HEAD_NAMES = (*TRAINABLE_HEADS, "movenet")


@dataclass
class ModelMeta:
    """Everything needed to rebuild a model and its pre/post-processing.

    ``input_size`` is (H, W) in pixels. ``mean``/``std`` apply to RGB values scaled to
    [0, 1]. ``head_cfg`` holds the head's construction settings, ``decoder`` its
    inference-time decoding settings (e.g. NerPE dense resolution or progressive search).
    """

    head: str
    backbone: str
    input_size: tuple[int, int]
    stride: int = 8
    skeleton: str = "coco17"
    head_cfg: dict[str, Any] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color: str = "RGB"
    precision: str = "fp32"
    name: str = ""
    edgepose_version: str = __version__
    format_version: int = FORMAT_VERSION
    # Derived from the skeleton, stored so artifacts are self-describing.
    joints: list[str] = field(default_factory=list)
    limbs: list[list[int]] = field(default_factory=list)
    flip_pairs: list[list[int]] = field(default_factory=list)
    # Set by `edgepose adapt`: how this model was fine-tuned on a user's footage (footage
    # hashes, teacher, epochs, base model). Empty for models trained from scratch.
    adaptation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.head not in HEAD_NAMES:
            raise ModelError(f"unknown head {self.head!r}; choose one of {list(HEAD_NAMES)}")
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if min(self.input_size) < 16:
            raise ModelError(f"input size {self.input_size} is too small (min 16 px per side)")
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        sk = get_skeleton(self.skeleton)
        if not self.joints:
            self.joints = list(sk.joints)
        if not self.limbs:
            self.limbs = [list(p) for p in sk.limbs]
        if not self.flip_pairs:
            self.flip_pairs = [list(p) for p in sk.flip_pairs]
        if not self.name:
            h, w = self.input_size
            self.name = f"{self.backbone}-{self.head}-{h}x{w}"

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def height(self) -> int:
        return self.input_size[0]

    @property
    def width(self) -> int:
        return self.input_size[1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "metadata") -> "ModelMeta":
        if not isinstance(d, dict) or "head" not in d or "backbone" not in d:
            raise ModelError(f"{source}: not edgepose model metadata (no 'head'/'backbone')")
        if int(d.get("format_version", FORMAT_VERSION)) > FORMAT_VERSION:
            raise ModelError(
                f"{source}: metadata format {d['format_version']} is newer than this "
                f"edgepose ({__version__}) understands; upgrade edgepose"
            )
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ModelError(f"{source}: malformed model metadata ({e})") from None

    @classmethod
    def from_json(cls, text: str, source: str = "metadata") -> "ModelMeta":
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelError(f"{source}: model metadata is not valid JSON ({e})") from None
        return cls.from_dict(d, source)

    def check_matches(self, other: "ModelMeta", what: str = "artifact") -> None:
        """Raise a clear error if ``other`` describes a different network/IO contract."""
        keys = ("head", "backbone", "input_size", "stride", "skeleton", "head_cfg")
        diffs = [
            f"{k}: {getattr(self, k)!r} vs {getattr(other, k)!r}"
            for k in keys
            if getattr(self, k) != getattr(other, k)
        ]
        if diffs:
            raise ModelError(f"{what} was made for another model ({'; '.join(diffs)})")

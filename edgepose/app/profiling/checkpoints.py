"""Trained checkpoints for sweep points.

``--checkpoint`` takes ``head=path``, a bare ``path``, or a folder (searched recursively
for ``*.pt`` / ``*.pth`` / ``*.ckpt``; ``best.pt`` is preferred over ``last.pt`` of the
same run). A checkpoint serves every point whose backbone, head and input size equal its
metadata. A NerPE checkpoint serves both ``nerpe-dense`` and ``nerpe-progressive`` points:
the decoder is an inference-time setting, so one trained network is profiled under every
decoder of the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgepose.engines.meta_io import read_meta
from edgepose.metadata import ModelMeta
from edgepose.errors import ProfileError
from edgepose.app.profiling.sweep import HeadSpec, SweepPoint, parse_head

SUFFIXES = (".pt", ".pth", ".ckpt")
# Within one folder, the checkpoint a user most likely means comes first.
PREFERENCE = {"best": 0, "last": 2}


@dataclass(frozen=True)
class CheckpointEntry:
    """A checkpoint file, its metadata and the head key it was given under (if any)."""

    path: Path
    meta: ModelMeta
    key: str | None = None

    def matches(self, backbone: str, head: HeadSpec, size: tuple[int, int]) -> bool:
        if self.key is not None and self.key not in (head.label, head.head):
            return False
        return (
            self.meta.head == head.head
            and self.meta.backbone == backbone
            and tuple(self.meta.input_size) == tuple(size)
        )


def _sort_key(p: Path) -> tuple:
    return (str(p.parent), PREFERENCE.get(p.stem, 1), p.name)


def find_files(path: Path) -> list[Path]:
    """A checkpoint file, or every checkpoint under a folder (best.pt before last.pt)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()),
                       key=_sort_key)
        if not files:
            raise ProfileError(f"{path}: no checkpoints (*.pt, *.pth, *.ckpt) in this folder")
        return files
    raise ProfileError(f"{path}: checkpoint file or folder not found")


def parse_checkpoint_args(values: list[str] | None) -> list[CheckpointEntry]:
    """``["dsnt=runs/a/best.pt", "runs/"]`` -> entries (metadata read from each file)."""
    entries: list[CheckpointEntry] = []
    for value in values or []:
        key, sep, rest = value.partition("=")
        if sep and not Path(value).exists():
            spec = parse_head(key)  # validates the head name
            key, path = key.strip().lower(), Path(rest)
            if key not in (spec.label, spec.head, "nerpe"):
                key = spec.label
        else:
            key, path = None, Path(value)
        for f in find_files(path):
            meta = read_meta(f)  # EngineError naming the file for a broken one
            if key is not None and parse_head(key).head != meta.head:
                raise ProfileError(
                    f"{f}: given as {key}= but it is a {meta.head} model "
                    f"({meta.backbone}, {meta.input_size[0]}x{meta.input_size[1]}); "
                    f"write {meta.head}={f}"
                )
            entries.append(CheckpointEntry(f, meta, key))
    return entries


def match(entries: list[CheckpointEntry], point: SweepPoint) -> CheckpointEntry | None:
    """The first checkpoint that fits ``point`` (order of ``--checkpoint``, best.pt first)."""
    for e in entries:
        if e.matches(point.backbone, point.head, point.size):
            return e
    return None


def unused(entries: list[CheckpointEntry], points: list[SweepPoint]) -> list[CheckpointEntry]:
    """Checkpoints of a network no point of the sweep profiles (reported so a typo in
    --sizes is noticed). A ``last.pt`` whose ``best.pt`` is used is not reported."""
    used = [e for e in (match(entries, p) for p in points) if e is not None]
    used_nets = {_net(e) for e in used}
    return [e for e in entries if _net(e) not in used_nets]


def _net(e: CheckpointEntry) -> tuple:
    return (e.meta.head, e.meta.backbone, tuple(e.meta.input_size))

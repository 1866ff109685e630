"""A user's footage as a few distinct frames: scene-change-aware sampling, a hold-out in time.

``edgepose adapt`` learns one camera's scene from the user's own videos / image sequences.
Consecutive frames of a fixed camera are nearly identical, so labelling every frame wastes
the teacher's time and makes the hold-out meaningless (its frames would have near-twins in
training). :func:`sample_footage` keeps a frame only when the picture has changed enough
since the last kept frame - the percentage of a small grey thumbnail's pixels that
changed by more than :data:`PIXEL_CHANGE` grey levels (a person walking through a fixed
camera's view changes a few percent; sensor noise none; a whole-frame mean difference would
be swamped by the static background) - at least ``min_gap`` frames apart (videos; the
images of a folder are separate captures already), and at least every ``max_gap`` frames
(a slow scene still gets sampled); ``max_frames`` then thins the kept frames evenly.

:func:`split_holdout` holds out the *last* fraction of each clip in time, so evaluation
frames come after every training frame of that clip (never a neighbour of one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from edgepose.errors import DataError, SourceError

THUMB = (96, 72)  # (W, H) of the grey thumbnails frames are compared on
PIXEL_CHANGE = 24.0  # grey levels (0-255) a thumbnail pixel must change by to count


@dataclass(frozen=True)
class FootageFrame:
    """One kept frame: its ``clip`` (name), ``index`` (frame number in that clip, in time
    order), the JPEG it was written to (``path``) and the source file it came from."""

    clip: str
    index: int
    path: Path
    source: str


@dataclass
class SamplingOptions:
    """See the module docstring. ``threshold``: % of thumbnail pixels changed."""

    threshold: float = 3.0
    min_gap: int = 2
    max_gap: int = 150
    max_frames: int = 300  # per clip; 0 = no limit

    def validate(self) -> "SamplingOptions":
        if self.threshold < 0 or self.min_gap < 1 or self.max_gap < self.min_gap:
            raise DataError(f"frame sampling: need --scene-change >= 0, --min-gap >= 1 and "
                            f"--max-gap >= --min-gap (got {self.threshold}, {self.min_gap}, "
                            f"{self.max_gap})")
        if self.max_frames < 0:
            raise DataError(f"--max-frames must be >= 0 (0 = no limit), got {self.max_frames}")
        return self


def _is_video(path: Path) -> bool:
    from edgepose.data.files import is_image_file

    return path.is_file() and not is_image_file(path)


def read_frames(source) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) of a video file, an image sequence folder (sorted by name) or one
    image. Unreadable images in a folder are skipped; an unreadable video is an error."""
    from edgepose.data.files import list_images

    import cv2

    path = Path(source)
    if not path.exists():
        raise SourceError(f"{path}: no such video, image or folder")
    if _is_video(path):
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise SourceError(f"{path}: video cannot be opened (unknown codec or not a video)")
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield i, frame
                i += 1
        finally:
            cap.release()
        return
    for i, f in enumerate(list_images(path)):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is not None:
            yield i, img


def save_frame(path: Path, frame: np.ndarray) -> Path:
    """Write ``frame`` as a JPEG (quality 92) unless ``path`` exists (a rerun reuses it)."""
    import cv2

    if not path.exists():
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def thumbnail(frame: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def change_percent(a: np.ndarray, b: np.ndarray) -> float:
    """% of thumbnail pixels that differ by more than PIXEL_CHANGE grey levels."""
    return 100.0 * float((np.abs(a - b) > PIXEL_CHANGE).mean())


def keep_frames(thumbs: Sequence[np.ndarray], opts: SamplingOptions) -> list[int]:
    """Positions (into ``thumbs``, in time order) of the frames to keep: the first frame,
    then every frame that differs from the last kept one by ``threshold`` % and is at least
    ``min_gap`` frames after it, or is ``max_gap`` frames after it; thinned evenly to
    ``max_frames``."""
    kept: list[int] = []
    for i, t in enumerate(thumbs):
        if not kept:
            kept.append(i)
            continue
        gap = i - kept[-1]
        changed = change_percent(t, thumbs[kept[-1]]) >= opts.threshold
        if (gap >= opts.min_gap and changed) or gap >= opts.max_gap:
            kept.append(i)
    if opts.max_frames and len(kept) > opts.max_frames:
        pick = np.linspace(0, len(kept) - 1, opts.max_frames).round().astype(int)
        kept = [kept[j] for j in sorted(set(pick.tolist()))]
    return kept


def clip_name(source: Path, taken: set[str]) -> str:
    """A short unique name for a source (its stem, numbered if two sources share one)."""
    base = "".join(c if c.isalnum() or c in "-_" else "_" for c in source.stem) or "clip"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def sample_footage(sources: Sequence, dest: Path, opts: SamplingOptions | None = None,
                   progress: bool = True) -> list[FootageFrame]:
    """Sample every source into ``dest/<clip>/frame_NNNNNN.jpg`` (already written frames
    are kept, so a rerun is cheap); returns the kept frames, clip by clip, in time order."""
    from tqdm import tqdm

    opts = (opts or SamplingOptions()).validate()
    dest = Path(dest)
    out: list[FootageFrame] = []
    taken: set[str] = set()
    for src in sources:
        src = Path(src)
        clip = clip_name(src, taken)
        # pass 1: thumbnails only (a long video never sits in memory); pass 2: write
        indices, thumbs = [], []
        bar = tqdm(desc=f"scan {src.name}", unit="frame", disable=not progress, leave=False)
        for i, frame in read_frames(src):
            indices.append(i)
            thumbs.append(thumbnail(frame))
            bar.update(1)
        bar.close()
        if not indices:
            raise SourceError(f"{src}: no frame could be read")
        # min_gap spaces a video's consecutive frames; the images of a folder are already
        # separate captures, so there only the change threshold (and max_frames) thin them
        clip_opts = opts if _is_video(src) else dataclasses.replace(opts, min_gap=1)
        wanted = {indices[j] for j in keep_frames(thumbs, clip_opts)}
        (dest / clip).mkdir(parents=True, exist_ok=True)
        for i, frame in read_frames(src):
            if i in wanted:
                path = save_frame(dest / clip / f"frame_{i:06d}.jpg", frame)
                out.append(FootageFrame(clip, i, path, str(src)))
    return out


def split_holdout(frames: Sequence[FootageFrame], fraction: float
                  ) -> tuple[list[FootageFrame], list[FootageFrame]]:
    """(train, holdout): the last ``fraction`` of each clip's frames, in time, is held out
    (at least one frame per clip when ``fraction`` > 0 and the clip has two or more)."""
    if not 0 <= fraction < 1:
        raise DataError(f"--holdout must be in [0, 1), got {fraction}")
    train, hold = [], []
    for clip in dict.fromkeys(f.clip for f in frames):
        mine = sorted((f for f in frames if f.clip == clip), key=lambda f: f.index)
        n_hold = int(round(fraction * len(mine)))
        if fraction > 0 and len(mine) >= 2:
            n_hold = min(max(n_hold, 1), len(mine) - 1)
        cut = len(mine) - n_hold
        train += mine[:cut]
        hold += mine[cut:]
    return train, hold


def file_digest(path) -> str:
    """sha256 of a file, or of a folder's image files (names and bytes, sorted)."""
    from edgepose.data.files import list_images
    from edgepose.fileio import sha256_files

    path = Path(path)
    if path.is_file():
        return sha256_files([path])
    return sha256_files(list_images(path), names=True)

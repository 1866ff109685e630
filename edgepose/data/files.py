"""Reading annotation files and images with clear errors (DataError naming the file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepose.errors import DataError

# What OpenCV reads, as every image folder / video input of edgepose recognises them.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(source) -> list[Path]:
    """The image files a user means by ``source``: a glob pattern, a folder (sorted) or one
    image. DataError for a pattern without images, an empty folder, a missing path or
    another file type."""
    import glob

    text = str(source)
    if any(c in text for c in "*?["):
        files = sorted(Path(f) for f in glob.glob(text) if is_image_file(f))
        if not files:
            raise DataError(f"{text}: the pattern matches no image files")
        return files
    path = Path(source)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if is_image_file(f))
        if not files:
            raise DataError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return files
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if is_image_file(path):
        return [path]
    raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; give an image "
                    f"({', '.join(IMAGE_SUFFIXES)}), a folder or a glob")


def read_json(path, what: str = "annotation file") -> Any:
    """Parse a JSON file; a missing or malformed file raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found; check the path")
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}: {what} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: {what} is not a UTF-8 JSON text ({e.reason})") from None


def require(d: Any, keys, where: str, hint: str = "") -> None:
    """Raise DataError naming the first of ``keys`` missing from dict ``d``."""
    if not isinstance(d, dict):
        raise DataError(f"{where} must be a JSON object, got {type(d).__name__}")
    for k in keys:
        if k not in d:
            raise DataError(f"{where} has no '{k}' key{hint}")


def try_read_image(path) -> tuple[np.ndarray | None, str]:
    """(BGR image, "") or (None, why it cannot be used). A JPEG that ends before its end
    marker is refused: OpenCV decodes it with a warning, the missing rows grey, and poses
    found in it are wrong (measured: keypoints 20-50 px off) -- a truncated download must
    be skipped and counted, not scored as a whole photo. An image too large for OpenCV
    (over ``CV_IO_MAX_IMAGE_PIXELS``, 2^30 by default) is skipped the same way."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return None, "does not exist"
    if size == 0:
        return None, "is empty (0 bytes)"
    if path.suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif") or size < 4:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(max(0, size - 4096))
            tail = f.read()
        if head == b"\xff\xd8" and b"\xff\xd9" not in tail:
            return None, "is truncated (the JPEG ends before its end marker)"
    try:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as e:
        big = "MAX_IMAGE_PIXELS" in str(e) or "imgsize" in str(e).lower()
        return None, ("is too large for OpenCV (over CV_IO_MAX_IMAGE_PIXELS)" if big
                      else f"cannot be decoded ({str(e).strip().splitlines()[-1][:80]})")
    if img is None:
        return None, "cannot be decoded"
    return img, ""


def read_image(path) -> np.ndarray:
    """Read a colour image as (H, W, 3) BGR uint8; DataError naming the path if it fails."""
    img, why = try_read_image(path)
    if img is None:
        raise DataError(f"{path}: image {why}; check the image folder and the file")
    return img

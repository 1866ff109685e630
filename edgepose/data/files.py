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


def read_image(path) -> np.ndarray:
    """Read a colour image as (H, W, 3) BGR uint8; DataError naming the path if it fails."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        what = "does not exist" if not Path(path).exists() else "cannot be decoded"
        raise DataError(f"{path}: image {what}; check the image folder and the file")
    return img

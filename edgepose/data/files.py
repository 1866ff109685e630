"""Reading annotation files and images with clear errors (DataError naming the file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepose.errors import DataError


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

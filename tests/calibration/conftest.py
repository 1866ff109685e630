"""Fixtures of the calibration tests (helpers live in calib_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from calib_helpers import export_tiny, write_images


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return export_tiny(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("calib_images")
    write_images(folder, 24)
    return folder

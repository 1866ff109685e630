"""Fixtures for the realtime tests (helpers live in rt_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import rt_helpers  # noqa: E402


@pytest.fixture
def numbered_video(tmp_path) -> tuple[Path, int]:
    """A real mp4v file of 40 frames, each showing its index as binary blocks."""
    n = 40
    return rt_helpers.write_numbered_video(tmp_path / "numbered.mp4", n), n


@pytest.fixture
def template_onnx(tmp_path) -> Path:
    """A real (tiny) ONNX model with edgepose metadata; see rt_helpers.make_template_onnx."""
    return rt_helpers.make_template_onnx(tmp_path / "template.onnx", rt_helpers.tiny_meta())


@pytest.fixture(autouse=True)
def no_leftover_threads():
    """Every realtime test must leave no edgepose thread behind."""
    yield
    left = rt_helpers.pipeline_threads()
    assert not left, f"threads left running after the test: {left}"

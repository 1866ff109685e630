"""Session fixtures for the engine tests: one checkpoint + verified ONNX export per head."""

from __future__ import annotations

import numpy as np
import pytest

from engine_helpers import make_checkpoint


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """head -> (checkpoint path, onnx path, meta); built once per session per head."""
    from edgepose.engines.export import ExportOptions, export_checkpoint

    cache: dict = {}

    def get(head: str):
        if head not in cache:
            d = tmp_path_factory.mktemp(f"export_{head}")
            ckpt, onnx_path = d / f"{head}.pt", d / f"{head}.onnx"
            _, meta = make_checkpoint(ckpt, head)
            report = export_checkpoint(ckpt, onnx_path, ExportOptions(), progress=False)
            cache[head] = (ckpt, onnx_path, meta, report)
        return cache[head]

    return get


@pytest.fixture
def rng():
    return np.random.default_rng(0)

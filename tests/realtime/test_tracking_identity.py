"""Issue 32: identity on a clip with ground truth, kept as a regression floor.

The clip (benchmarks/tracking.py: committed LSP people moving along known paths over a
blurred real background -- side by side, a crossing, one standing, one arriving late) runs
through the live tracker (``model.track(multi=True)``, the pipeline of ``run --multi``) and
is scored with motmetrics. Measured on the 2-core CPU: MOTA 0.648, IDF1 0.569 (before
issue 32: 0.593 / 0.550). The goal (IDF1 >= 0.9) is not met; the floor keeps what is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ground_truth_clip_identity_floor(tmp_path):
    pytest.importorskip("motmetrics", reason="pip install motmetrics (in the dev extra)")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from tracking import identity_metrics, make_gt_clip, track_clip
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    clip = tmp_path / "gt.avi"
    truth = make_gt_clip(clip)
    assert len(truth) == 90 and max(len(b) for b in truth.values()) == 5
    m = identity_metrics(truth, track_clip(clip))
    assert m["idf1"] >= 0.5 and m["mota"] >= 0.55, m

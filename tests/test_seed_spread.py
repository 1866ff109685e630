"""benchmarks/seed_spread.py: NAME-seedN rows grouped, mean / sample sd / range per metric,
and the gap between groups in points -- checked on a hand-made results file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def row(label, coco05, lsp10):
    return {"label": label, "coco": {"pck@0.05_box": coco05, "pck@0.1_box": 0.5, "oks_ap": 0.1},
            "lsp": {"pck@0.1_torso": lsp10, "pck@0.2_torso": 0.5}}


def test_seed_spread_groups_seeds_and_gives_mean_sd_and_gap():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import seed_spread
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = [row("a-seed0", 0.30, 0.20), row("a-seed1", 0.32, 0.22), row("lightning", 0.9, 0.9),
            row("b-seed0", 0.25, 0.10), row("b-seed7", 0.27, 0.12), row("b-seed2", 0.26, 0.11)]
    groups = seed_spread.group_by_seed(rows)
    assert list(groups) == ["a", "b"] and [len(g) for g in groups.values()] == [2, 3]
    s = seed_spread.spread(groups["a"])
    assert s["COCO PCK@0.05"] == pytest.approx((0.31, 0.0141421, 0.30, 0.32), abs=1e-6)
    assert seed_spread.spread(groups["b"])["LSP PCK@0.1"][:2] == pytest.approx((0.11, 0.01))
    text = seed_spread.report({"rows": rows, "lsp_people": 3, "coco_people": 2, "machine": "m"})
    assert "| a | 2 | 0.310 ± 0.014 (0.300–0.320)" in text
    assert "b − a, points (difference of the means): COCO PCK@0.05 -5.0" in text
    assert "LSP PCK@0.1 -10.0" in text and "lightning" not in text
    with pytest.raises(SystemExit, match="no NAME-seedN rows"):
        seed_spread.report({"rows": rows[2:3], "lsp_people": 1, "coco_people": 1, "machine": "m"})

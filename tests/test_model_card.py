"""The model card's numbers come from the benchmark's JSON, never typed (issue 29)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_heads_table_is_generated_from_the_benchmark_json():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import model_card
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    results = json.loads(model_card.RESULTS.read_text())
    card = model_card.CARD.read_text()
    assert model_card.BEGIN in card, "run python benchmarks/model_card.py"
    assert model_card.render(card, results) == card, \
        "MODEL_CARD.md's heads table differs from the benchmark JSON: regenerate it"
    labels = [r["label"] for r in results["rows"]]
    for label in labels:
        assert f"| {label} |" in card

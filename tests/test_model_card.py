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


def test_every_named_model_has_its_measured_row():
    """Each model shipped by name is a row of the benchmark run (matched by the file's
    sha256), so the card never describes a file nobody measured."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import model_card
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from edgepose.bundled import NAMED_MODELS

    results = json.loads(model_card.RESULTS.read_text())
    measured = set(model_card.shipped_names()[r["sha256"]] for r in results["rows"]
                   if r.get("sha256") in model_card.shipped_names())
    assert measured == set(NAMED_MODELS), set(NAMED_MODELS) - measured

"""The model card's table of the heads on MoveNet's trunk, generated from a benchmark's JSON.

    python benchmarks/model_card.py [--results benchmarks/results/real_accuracy/issue29_soups/results.json]

Rows are written between the ``<!-- heads-table:begin -->`` / ``<!-- heads-table:end -->``
markers of ``edgepose/assets/MODEL_CARD.md``, one per row of that ``real_accuracy.py`` run
(same machine, same run: times compare), with the time as a ratio to MoveNet Lightning's
row and, where a row's file is a bundled model (same sha256), the name it ships under. ``tests/test_model_card.py`` regenerates the block and checks it equals the file, so
a number in the card cannot be typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "edgepose" / "assets" / "MODEL_CARD.md"
RESULTS = ROOT / "benchmarks" / "results" / "real_accuracy" / "issue29_soups" / "results.json"
BEGIN, END = "<!-- heads-table:begin -->", "<!-- heads-table:end -->"
LIGHTNING = "movenet-lightning"


def shipped_names() -> dict[str, str]:
    """sha256 of each bundled named model's file -> its name."""
    import hashlib

    from edgepose.bundled import ASSETS, NAMED_MODELS

    return {hashlib.sha256((ASSETS / f).read_bytes()).hexdigest(): name
            for name, f in NAMED_MODELS.items() if (ASSETS / f).is_file()}


def table(results: dict) -> str:
    rows = results["rows"]
    names = shipped_names()
    ref = next((r for r in rows if r["label"] == LIGHTNING), None)
    head = (f"Real people nobody here trained on, ground-truth boxes; ONNX Runtime "
            f"{results['threads']} thread, batch 1, {results['machine']}, all rows in one run "
            f"(`{RESULTS.relative_to(ROOT)}`)." + (f" {results['note']}" if results.get("note")
                                                 else "") + "\n\n"
            "| model | ships as | input | ms / person | vs Lightning | LSP PCK@0.2 | LSP PCK@0.1 | "
            "COCO PCK@0.1 | COCO PCK@0.05 | COCO OKS AP |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        ratio = f"{r['ms_per_person'] / ref['ms_per_person']:.2f}x" if ref else "-"
        ships = f"`{names[r['sha256']]}`" if r.get("sha256") in names else "-"
        lines.append(f"| {r['label']} | {ships} | {r['input']} | {r['ms_per_person']:.2f} | {ratio} | "
                     f"{r['lsp']['pck@0.2_torso']:.3f} | {r['lsp']['pck@0.1_torso']:.3f} | "
                     f"{r['coco']['pck@0.1_box']:.3f} | {r['coco']['pck@0.05_box']:.3f} | "
                     f"{r['coco']['oks_ap']:.3f} |")
    return "\n".join(lines)


def render(card_text: str, results: dict) -> str:
    block = f"{BEGIN}\n{table(results)}\n{END}"
    if BEGIN not in card_text:
        return card_text.rstrip() + "\n\n## Heads on MoveNet's trunk (issue 29)\n\n" + block + "\n"
    return re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, card_text,
                  flags=re.S)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    CARD.write_text(render(CARD.read_text(), json.loads(args.results.read_text())))
    print(f"wrote the table into {CARD}")


if __name__ == "__main__":
    main()

"""The spread over training seeds of a real-accuracy run: mean, standard deviation, min and max.

    python benchmarks/seed_spread.py benchmarks/results/real_accuracy/seeds_64/results.json

Rows of ``benchmarks/real_accuracy.py`` labelled ``NAME-seedN`` are grouped by NAME; every
accuracy column gets mean ± sd (sample) and its range over the seeds, and the gap between the
first group and each other one is given in points. Writes ``seed_spread.md`` beside the
results file.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

METRICS = (  # (column, how to read it from a results row)
    ("COCO PCK@0.05", ("coco", "pck@0.05_box")),
    ("COCO PCK@0.1", ("coco", "pck@0.1_box")),
    ("COCO OKS AP", ("coco", "oks_ap")),
    ("LSP PCK@0.05", ("lsp", "pck@0.05_torso")),
    ("LSP PCK@0.1", ("lsp", "pck@0.1_torso")),
    ("LSP PCK@0.2", ("lsp", "pck@0.2_torso")),
)


def group_by_seed(rows: list[dict]) -> dict[str, list[dict]]:
    """``NAME-seedN`` rows -> {NAME: [rows]}, in first-seen order; other rows are left out."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        m = re.fullmatch(r"(.+)-seed\d+", row["label"])
        if m:
            groups.setdefault(m.group(1), []).append(row)
    return groups


def spread(rows: list[dict]) -> dict[str, tuple[float, float, float, float]]:
    """column -> (mean, sample sd (0 for one seed), min, max) over ``rows``; a column the
    rows do not all have (an older results file) is left out."""
    out = {}
    for name, (part, key) in METRICS:
        if not all(key in r.get(part, {}) for r in rows):
            continue
        v = [float(r[part][key]) for r in rows]
        out[name] = (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0,
                     min(v), max(v))
    return out


def report(results: dict) -> str:
    groups = group_by_seed(results["rows"])
    if not groups:
        raise SystemExit("no NAME-seedN rows in this results file")
    stats = {name: spread(rows) for name, rows in groups.items()}
    names = [n for n, _ in METRICS if all(n in st for st in stats.values())]
    lines = [f"Seed spread: {results['lsp_people']} LSP test people, {results['coco_people']} "
             f"COCO val people; mean ± sd (min–max) over the seeds ({results['machine']}).", "",
             "| model | seeds | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for name, s in stats.items():
        cells = [f"{m:.3f} ± {sd:.3f} ({lo:.3f}–{hi:.3f})" for m, sd, lo, hi in
                 (s[c] for c in names)]
        lines.append(f"| {name} | {len(groups[name])} | " + " | ".join(cells) + " |")
    first = next(iter(stats))
    for name in list(stats)[1:]:
        gaps = ", ".join(f"{c} {100 * (stats[name][c][0] - stats[first][c][0]):+.1f}"
                         for c in names)
        lines += ["", f"{name} − {first}, points (difference of the means): {gaps}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="a benchmarks/real_accuracy.py results.json")
    args = ap.parse_args()
    text = report(json.loads(args.results.read_text()))
    (args.results.parent / "seed_spread.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

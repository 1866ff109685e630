"""``results.csv`` (every column, full precision) and ``results.md`` (a readable table).

Both are rewritten after every point, so a sweep that is killed still leaves what it
measured. Written atomically (temporary file + rename).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from edgepose.app.profiling.run_points import COLUMNS

# Markdown table: (column, header, format)
MD_COLUMNS = (
    ("backbone", "backbone", "s"),
    ("head", "head", "s"),
    ("decoder", "decoder", "s"),
    ("input", "input", "s"),
    ("backend", "backend", "s"),
    ("precision", "prec", "s"),
    ("trained", "trained", "s"),
    ("params_m", "params (M)", ".2f"),
    ("gflops", "GFLOPs", ".3f"),
    ("decoder_gflops", "of which decoder", ".3f"),
    ("latency_ms", "latency ms (median)", ".2f"),
    ("p90_ms", "p90 ms", ".2f"),
    ("p99_ms", "p99 ms", ".2f"),
    ("fps_b1", "FPS b1", ".1f"),
    ("fps_batch", "FPS bN", ".1f"),
    ("peak_mem_mb", "peak MiB", ".0f"),
    ("pck@0.05", "PCK@0.05", ".3f"),
    ("pck@0.1", "PCK@0.1", ".3f"),
    ("mean_err_px", "err px", ".2f"),
    ("coco_ap", "AP", ".3f"),
)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def csv_value(v: Any) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(round(v, 6))
    return "" if v is None else str(v)


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([csv_value(r.get(c, "")) for c in COLUMNS])
    return buf.getvalue()


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    path = Path(path)
    _atomic_write(path, to_csv(rows))
    return path


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a results.csv as dicts of strings (for tests and re-plotting)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def md_value(v: Any, fmt: str) -> str:
    if v == "" or v is None:
        return "–"
    if fmt != "s":
        try:
            x = float(v)
        except (TypeError, ValueError):
            return str(v)
        return "–" if not math.isfinite(x) else format(x, fmt)
    return str(v).replace("|", "\\|")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The measured (status ok) rows as a Markdown table; columns empty in every row dropped."""
    ok = [r for r in rows if r.get("status") == "ok"]
    cols = [c for c in MD_COLUMNS if any(r.get(c[0], "") not in ("", None) for r in ok)]
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |",
             "|" + "|".join("---" if f == "s" else "---:" for _, _, f in cols) + "|"]
    for r in ok:
        lines.append("| " + " | ".join(md_value(r.get(c), f) for c, _, f in cols) + " |")
    return "\n".join(lines)


def to_markdown(rows: list[dict[str, Any]], system: dict[str, Any] | None = None,
                title: str = "edgepose profile", interrupted: bool = False) -> str:
    """Whole ``results.md``: machine line, the table, then skipped / failed points."""
    out = [f"# {title}", ""]
    if system:
        out += [system_line(system), ""]
        if system.get("warning"):
            out += [f"**Warning:** {system['warning']}.", ""]
    ok = [r for r in rows if r.get("status") == "ok"]
    if ok:
        r0 = ok[0]
        out += [
            f"Latency: median / p90 / p99 over batch-1 calls (each call synchronised); "
            f"FPS b1 / bN: images per second at batch 1 / batch {r0.get('batch')}; "
            f"threads: {r0.get('threads')}; GFLOPs per image incl. decoding (2 x MACs); "
            "peak MiB: resident-memory growth while loading and running the point.",
            "",
            markdown_table(rows),
            "",
        ]
    else:
        out += ["No point was measured.", ""]
    if any(r.get("trained") == "no" and r.get("status") == "ok" for r in rows):
        out += ["Points with trained = no ran with random weights: speed only, no accuracy.", ""]
    other = [r for r in rows if r.get("status") != "ok"]
    if other:
        out += ["## Not measured", ""]
        for r in other:
            label = f"{r['backbone']}/{r['head']}/{r['input']}/{r['backend']}/{r['precision']}"
            out.append(f"- {label}: **{r['status']}**: {r.get('note', '')}")
        out.append("")
    if interrupted:
        out += ["*Interrupted (Ctrl-C): the sweep stopped after the points above.*", ""]
    return "\n".join(out)


def system_line(system: dict[str, Any]) -> str:
    """One line summary of system.json for the report header."""
    m = system.get("machine", {})
    v = system.get("versions", {})
    gpu = m.get("gpu") or "no GPU"
    parts = [
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cpus_usable', '?')} usable cores, "
        f"{m.get('ram_gb', '?')} GB RAM, {gpu}",
        f"load average at start {m.get('loadavg', '?')}",
        "; ".join(f"{k} {v[k]}" for k in ("torch", "onnxruntime", "timm", "tensorrt") if v.get(k)),
    ]
    return "*" + ". ".join(p for p in parts if p) + ".*"


def write_markdown(rows: list[dict[str, Any]], path: str | os.PathLike, **kw) -> Path:
    path = Path(path)
    _atomic_write(path, to_markdown(rows, **kw))
    return path

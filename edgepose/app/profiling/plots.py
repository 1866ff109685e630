"""The two sweep plots (matplotlib, Agg backend; no display needed).

- ``accuracy_vs_fps.png``: x = FPS at batch 1, y = PCK@0.05; one line per head (and per
  backbone / backend / precision when those vary), one marker per input resolution,
  labelled with it. Without any accuracy it plots median latency against GFLOPs instead
  and says so in the title.
- ``latency_vs_resolution.png``: median latency (p90 as the upper error bar) against input
  pixels, one line per head configuration.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

SERIES_KEYS = ("backbone", "head", "backend", "precision")


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _pixels(label: str) -> int:
    h, _, w = str(label).partition("x")
    return int(h) * int(w or h)


Point = tuple[float, float, str, dict]  # (x, y, input-size label, row)


def series(rows: list[dict[str, Any]], y: str, x: str) -> dict[str, list[Point]]:
    """Group ok rows with numeric ``x`` and ``y`` into named lines sorted by input pixels.

    The name lists only the keys that vary across the rows (e.g. just the head)."""
    ok = [r for r in rows if r.get("status") == "ok" and _num(r.get(x)) is not None
          and _num(r.get(y)) is not None]
    varying = [k for k in SERIES_KEYS if len({str(r.get(k)) for r in ok}) > 1] or ["head"]
    out: dict[str, list] = {}
    for r in sorted(ok, key=lambda r: _pixels(r["input"])):
        name = " / ".join(str(r[k]) for k in varying)
        out.setdefault(name, []).append((_num(r[x]), _num(r[y]), str(r["input"]), r))
    return out


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = "osD^v<>ph*"


def styles(lines: dict) -> dict[str, dict]:
    """Line name -> matplotlib style: colour and marker by head (same head, same colour on
    every plot), line style by backend / precision / backbone."""
    def first(pts, key):
        return str(pts[0][3].get(key, ""))

    heads = sorted({first(p, "head") for p in lines.values()})
    others = sorted({(first(p, "backend"), first(p, "precision"), first(p, "backbone"))
                     for p in lines.values()})
    out = {}
    for name, pts in lines.items():
        h = heads.index(first(pts, "head"))
        o = others.index((first(pts, "backend"), first(pts, "precision"), first(pts, "backbone")))
        out[name] = {"color": f"C{h % 10}", "marker": MARKERS[h % len(MARKERS)],
                     "linestyle": LINESTYLES[o % len(LINESTYLES)]}
    return out


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    return plt, fig, ax


def _save(plt, fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _draw(ax, lines: dict, annotate: bool = True) -> None:
    st = styles(lines)
    for name, pts in sorted(lines.items()):
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        ax.plot(xs, ys, label=name, **st[name])
        if annotate:
            for x, y, lab, _ in pts:
                ax.annotate(lab, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)


def plot_accuracy_vs_fps(rows: list[dict[str, Any]], path: str | os.PathLike,
                         metric: str = "pck@0.05") -> Path:
    """Accuracy against batch-1 FPS, or latency against GFLOPs when no accuracy exists."""
    plt, fig, ax = _figure()
    lines = series(rows, y=metric, x="fps_b1")
    if lines:
        _draw(ax, lines)
        speed_only = sum(1 for r in rows if r.get("status") == "ok" and _num(r.get(metric)) is None)
        title = f"{metric.upper()} vs FPS (batch 1); one marker per input size"
        if speed_only:
            title += f"\n{speed_only} speed-only point(s) without accuracy not shown"
        ax.set_xlabel("FPS at batch 1 (images / s)")
        ax.set_ylabel(metric.upper())
    else:
        lines = series(rows, y="latency_ms", x="gflops")
        _draw(ax, lines)
        title = ("No accuracy measured (no trained checkpoint + dataset): latency only,\n"
                 "median batch-1 latency vs GFLOPs; one marker per input size")
        ax.set_xlabel("GFLOPs per image (incl. decoding)")
        ax.set_ylabel("median latency at batch 1 (ms)")
        ys = [p[1] for pts in lines.values() for p in pts]
        if ys and min(ys) > 0 and max(ys) / min(ys) > 20:
            ax.set_yscale("log")
    if not lines:
        title = "No point was measured"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if lines:
        ax.legend(fontsize=8)
    return _save(plt, fig, Path(path))


def plot_latency_vs_resolution(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Median batch-1 latency (p90 upper bar) against input pixels, log-log."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullLocator

    plt, fig, ax = _figure()
    lines = series(rows, y="latency_ms", x="fps_b1")
    st = styles(lines)
    ticks: dict[int, str] = {}
    for name, pts in sorted(lines.items()):
        px = [_pixels(p[2]) for p in pts]
        med = [p[1] for p in pts]
        p90 = [_num(p[3].get("p90_ms")) or p[1] for p in pts]
        err = [[0.0] * len(med), [max(a - b, 0.0) for a, b in zip(p90, med)]]
        ax.errorbar(px, med, yerr=err, capsize=3, label=name, **st[name])
        ticks.update({_pixels(p[2]): p[2] for p in pts})
    if lines:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(ticks))
        ax.set_xticklabels([ticks[k] for k in sorted(ticks)])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.legend(fontsize=8)
        ax.set_title("Median latency at batch 1 vs input resolution (bar: p90)", fontsize=10)
    else:
        ax.set_title("No point was measured", fontsize=10)
    ax.set_xlabel("input size (H x W; axis in pixels, log)")
    ax.set_ylabel("latency (ms, log)")
    ax.grid(True, alpha=0.3, which="both")
    return _save(plt, fig, Path(path))

"""Per-frame timing log (JSON lines, or CSV for a ``.csv`` path) and the run summary.

One record per rendered frame::

    frame            source frame id
    t_capture ...    stage timestamps, seconds since the run started (perf_counter)
    t_pre_start/t_pre_end, t_inf_start/t_inf_end, t_post_start/t_post_end,
    t_smooth_start/t_smooth_end, t_render_start/t_render_end
    pre_ms, inf_ms, post_ms, smooth_ms, render_ms   stage durations: pre = boxes + crop,
                     inf = the model, post = back to frame pixels + next boxes,
                     smooth = One Euro filters, render = draw + write + show
    latency_ms       capture -> end of render (incl. display / video write)
    dropped          cumulative frames dropped by the capture thread (in the summary: up to
                     the last rendered frame; ``dropped_incl_stop`` adds the ones skipped
                     while the run was stopping)
    people           persons drawn

``close()`` writes ``<log>.summary.json`` next to the log (frames, mean FPS over wall time,
latency p50/p90/p99, drops, backend, model) and returns the summary; it is called on every
exit path, so the log is complete even after an error or Ctrl-C.
"""

from __future__ import annotations

import collections
import csv
import json
import time
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import EdgeposeError

FIELDS = (
    "frame", "t_capture", "t_pre_start", "t_pre_end", "t_inf_start", "t_inf_end",
    "t_post_start", "t_post_end", "t_smooth_start", "t_smooth_end", "t_render_start",
    "t_render_end", "pre_ms", "inf_ms", "post_ms", "smooth_ms", "render_ms", "latency_ms",
    "dropped", "people",
)
STAGES = ("pre", "inf", "post", "smooth", "render")


def summary_path(log_path: str | Path) -> Path:
    """``run.jsonl`` -> ``run.jsonl.summary.json``."""
    p = Path(log_path)
    return p.with_name(p.name + ".summary.json")


class FpsLog:
    """Collects frame records; writes them if ``path`` is given. ``t0`` = run start (s)."""

    def __init__(self, path: str | Path | None, t0: float | None = None,
                 info: dict[str, Any] | None = None, flush_every: int = 30, window: int = 30):
        self.path = Path(path) if path else None
        self.t0 = time.perf_counter() if t0 is None else t0
        self.info = dict(info or {})
        self.flush_every = flush_every
        self.frames = 0
        self.dropped = 0
        self.first_capture: float | None = None
        self.last_end: float | None = None
        self.latency = array("d")  # ms per frame; 8 bytes a frame
        self.stage_sum = dict.fromkeys(STAGES, 0.0)
        self._recent = collections.deque(maxlen=window)
        self._recent_stages: collections.deque = collections.deque(maxlen=window)
        self._file = None
        self._csv = None
        self.closed = False
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "w", newline="", encoding="utf-8")
            except OSError as e:
                raise EdgeposeError(f"cannot write log {self.path} ({e.strerror})") from None
            if self.path.suffix.lower() == ".csv":
                self._csv = csv.DictWriter(self._file, fieldnames=FIELDS)
                self._csv.writeheader()

    def rolling_fps(self) -> float:
        """Frames per second over the last ``window`` rendered frames."""
        if len(self._recent) < 2:
            return 0.0
        span = self._recent[-1] - self._recent[0]
        return (len(self._recent) - 1) / span if span > 0 else 0.0

    def stage_ms(self) -> dict[str, float]:
        """Mean ms per stage over the last ``window`` frames (for the HUD)."""
        if not self._recent_stages:
            return dict.fromkeys(STAGES, 0.0)
        n = len(self._recent_stages)
        return {k: sum(r[i] for r in self._recent_stages) / n for i, k in enumerate(STAGES)}

    def stage_ms_mean(self) -> dict[str, float]:
        """Mean ms per stage over the whole run."""
        n = max(self.frames, 1)
        return {k: v / n for k, v in self.stage_sum.items()}

    def record(self, frame_id: int, t: dict[str, float], dropped: int, people: int) -> dict:
        """Add one frame. ``t`` holds perf_counter times: capture, pre_start, pre_end,
        inf_start, inf_end, post_start, post_end, smooth_start, smooth_end, render_start,
        render_end."""
        rel = {f"t_{k}": round(v - self.t0, 6) for k, v in t.items()}
        rec: dict[str, Any] = {"frame": int(frame_id), **rel}
        stage = []
        for s in STAGES:
            ms = (t[f"{s}_end"] - t[f"{s}_start"]) * 1000.0
            rec[f"{s}_ms"] = round(ms, 3)
            self.stage_sum[s] += ms
            stage.append(ms)
        self._recent_stages.append(stage)
        lat = (t["render_end"] - t["capture"]) * 1000.0
        rec["latency_ms"] = round(lat, 3)
        rec["dropped"] = int(dropped)
        rec["people"] = int(people)
        self.frames += 1
        self.dropped = int(dropped)
        self.latency.append(lat)
        if self.first_capture is None:
            self.first_capture = t["capture"]
        self.last_end = t["render_end"]
        self._recent.append(t["render_end"])
        if self._file is not None:
            if self._csv is not None:
                self._csv.writerow(rec)
            else:
                self._file.write(json.dumps(rec) + "\n")
            if self.frames % self.flush_every == 0:
                self._file.flush()
        return rec

    def summary(self) -> dict[str, Any]:
        lat = np.frombuffer(self.latency, dtype=np.float64) if self.frames else np.zeros(0)
        wall = (self.last_end - self.first_capture) if self.frames > 1 else 0.0
        pct = (lambda q: round(float(np.percentile(lat, q)), 3)) if lat.size else (lambda q: None)
        return {
            "frames": self.frames,
            "wall_s": round(wall, 4),
            "fps_mean": round((self.frames - 1) / wall, 3) if wall > 0 else None,
            "latency_ms_p50": pct(50),
            "latency_ms_p90": pct(90),
            "latency_ms_p99": pct(99),
            "dropped": self.dropped,
            "stage_ms_mean": {k: round(v, 3) for k, v in self.stage_ms_mean().items()},
            **self.info,
        }

    def close(self) -> dict[str, Any]:
        """Flush and close the log, write the summary file; returns the summary."""
        s = self.summary()
        if self.closed:
            return s
        self.closed = True
        if self._file is not None:
            self._file.flush()
            self._file.close()
            summary_path(self.path).write_text(json.dumps(s, indent=2) + "\n", encoding="utf-8")
        return s


def format_summary(s: dict[str, Any]) -> str:
    """One human-readable line for the terminal."""
    fps = s.get("fps_mean")
    p = [s.get(f"latency_ms_p{q}") for q in (50, 90, 99)]
    lat = "n/a" if p[0] is None else f"{p[0]:.1f}/{p[1]:.1f}/{p[2]:.1f} ms"
    return (
        f"{s['frames']} frames, {fps if fps is not None else 0:.1f} FPS, latency p50/p90/p99 "
        f"{lat}, dropped {s['dropped']}, backend {s.get('backend', '?')}, "
        f"model {s.get('model', '?')}"
    )

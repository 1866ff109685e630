"""One Euro filter (Casiez, Roussel & Vogel, CHI 2012) over a whole pose at once.

Every joint coordinate gets its own low-pass filter whose cutoff rises with the signal's
speed: slow movements (jitter) are smoothed hard, fast ones follow with little lag::

    alpha(fc, dt) = 1 / (1 + tau / dt),   tau = 1 / (2 pi fc)
    dx_hat = lerp(dx_hat_prev, (x - x_hat_prev) / dt, alpha(d_cutoff, dt))
    fc     = min_cutoff + beta * |dx_hat|
    x_hat  = lerp(x_hat_prev, x, alpha(fc, dt))

Positions are in frame pixels, so ``beta`` is in 1 / pixel and speeds in pixels / second;
``dt`` always comes from the frames' capture timestamps (seconds), never a frame count, so
dropped frames do not change the filter's behaviour.

Steady-state lag on a ramp of speed v (px/s): x - x_hat -> v / (2 pi fc) with
fc = min_cutoff + beta * v (exact for the continuous filter, within dt for the discrete one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class SmoothOptions:
    """One Euro settings. ``min_cutoff``, ``d_cutoff`` in Hz; ``beta`` in 1/px."""

    enabled: bool = True
    # Chosen on real motion (issue 32, benchmarks/smoothing.py): the least error + jitter
    # against a pseudo ground truth (MoveNet Thunder, zero-phase smoothed) on vtest.avi's
    # walkers. Median lag 1.3 px (was 7.3 px with 0.2 / 0.01), jitter 1.54 px/frame (raw
    # 2.12). A slower filter (lower min_cutoff / beta) steadies a still person more and
    # trails a moving one: --smooth-min-cutoff / --smooth-beta.
    min_cutoff: float = 2.5
    beta: float = 0.1
    d_cutoff: float = 0.3
    # A gap longer than this (s) between frames restarts the filter instead of smoothing
    # across it (e.g. after a stall or a reconnect).
    max_gap_s: float = 1.0


def smoothing_factor(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    """alpha in (0, 1] of an exponential filter with the given cutoff, for a step of dt s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vectorised One Euro filter for an array of any fixed shape, e.g. (K, 2) keypoints."""

    def __init__(self, opts: SmoothOptions | None = None):
        self.opts = opts or SmoothOptions()
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample ``x`` (any shape, px) taken at time ``t`` (s). Returns float64."""
        x = np.asarray(x, dtype=np.float64)
        o = self.opts
        if not o.enabled:
            return x.copy()
        if self._x is None or self._x.shape != x.shape or self._t is None:
            return self._restart(x, t)
        dt = t - self._t
        if dt <= 0.0:
            return self._x.copy()  # same (or older) timestamp: nothing new to integrate
        if dt > o.max_gap_s:
            return self._restart(x, t)
        dx = (x - self._x) / dt
        a_d = smoothing_factor(o.d_cutoff, dt)
        self._dx = self._dx + a_d * (dx - self._dx)
        cutoff = o.min_cutoff + o.beta * np.abs(self._dx)
        a = smoothing_factor(cutoff, dt)
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.copy()

    def _restart(self, x: np.ndarray, t: float) -> np.ndarray:
        self._x = x.copy()
        self._dx = np.zeros_like(x)
        self._t = t
        return x.copy()


def smooth_tracks(tracks, t: float) -> None:
    """Stage 7 of a frame's journey: each track's ``raw`` pose through its own One Euro
    filter at time ``t`` (s) into ``keypoints``; a track whose pose restarted this frame
    (``smooth`` False: tracking was lost) keeps the raw pose."""
    for tr in tracks:
        if tr.smooth:
            tr.keypoints = tr.smoother(tr.raw, t)

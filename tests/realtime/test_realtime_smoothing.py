"""One Euro filter: constant, jitter removal, ramp lag bound, timestamps, reset."""

from __future__ import annotations

import math

import numpy as np

from edgepose.realtime.smoothing import OneEuroFilter, SmoothOptions, smoothing_factor

K = 17


def _run(f: OneEuroFilter, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    return np.stack([f(x, t) for x, t in zip(xs, ts)])


def test_constant_signal_unchanged():
    f = OneEuroFilter(SmoothOptions(min_cutoff=1.0, beta=0.02))
    x = np.random.default_rng(0).uniform(0, 640, (K, 2))
    ts = np.arange(100) / 30.0
    out = _run(f, np.repeat(x[None], 100, 0), ts)
    assert np.abs(out - x).max() < 1e-9, "a constant signal must pass unchanged"


def _jitter_cut(opts: SmoothOptions) -> float:
    """How many times 1 px of jitter on a still pose at 30 FPS is reduced (std ratio)."""
    rng = np.random.default_rng(1)
    base = rng.uniform(100, 500, (K, 2))
    n = 600
    xs = base + rng.normal(0, 1.0, (n, K, 2))
    ts = np.arange(n) / 30.0
    out = _run(OneEuroFilter(opts), xs, ts)
    return float((xs[60:] - base).std() / (out[60:] - base).std())


def test_jitter_on_a_still_pose_is_cut():
    """The defaults (chosen on real walkers, benchmarks/smoothing.py) halve jitter at rest;
    the slower setting they replaced (0.2 Hz, 0.01 /px) cut it ~5.7x but trailed walkers
    by 7.6 px. Both stay available: a user trades one for the other with two flags."""
    assert _jitter_cut(SmoothOptions()) >= 1.8
    assert _jitter_cut(SmoothOptions(min_cutoff=0.2, beta=0.01)) >= 5.0


def test_ramp_followed_with_bounded_lag():
    """Steady-state lag on a ramp of v px/s is v / (2 pi (min_cutoff + beta v)); we allow
    10 % over that plus one frame of motion for the discrete update."""
    opts = SmoothOptions()  # the defaults
    v, fps, n = 120.0, 30.0, 180
    ts = np.arange(n) / fps
    xs = np.zeros((n, K, 2))
    xs[..., 0] = 50 + v * ts[:, None]
    out = _run(OneEuroFilter(opts), xs, ts)
    bound = v / (2 * math.pi * (opts.min_cutoff + opts.beta * v)) * 1.1 + v / fps
    lag = xs[90:, :, 0] - out[90:, :, 0]  # after 3 s the derivative filter has settled
    assert (lag >= 0).all(), "the filter must not overshoot a ramp"
    assert lag.max() <= bound, f"lag {lag.max():.2f} px exceeds bound {bound:.2f} px"
    assert np.abs(out[90:, :, 1]).max() < 1e-9, "the still axis must stay put"


def test_dt_comes_from_timestamps_not_frame_count():
    """The same motion sampled at 30 FPS and at 10 FPS (dropped frames) ends at the same
    smoothed position: the filter integrates time, not frames."""
    opts = SmoothOptions(min_cutoff=1.0, beta=0.0)
    t30 = np.arange(91) / 30.0
    t10 = t30[::3]
    sig = lambda t: np.full((K, 2), 100.0) + (t >= 0.5) * 30.0  # noqa: E731 - a step at 0.5 s
    a = _run(OneEuroFilter(opts), np.stack([sig(t) for t in t30]), t30)[-1]
    b = _run(OneEuroFilter(opts), np.stack([sig(t) for t in t10]), t10)[-1]
    # exact discrete filters differ slightly; far apart if frames (not time) drove it
    assert np.abs(a - b).max() < 0.5, f"30 FPS {a[0, 0]:.2f} vs 10 FPS {b[0, 0]:.2f}"


def test_reset_disabled_and_alpha():
    f = OneEuroFilter(SmoothOptions())
    f(np.zeros((K, 2)), 0.0)
    f.reset()
    x = np.full((K, 2), 7.0)
    assert np.array_equal(f(x, 0.1), x), "after reset the first sample passes through"
    off = OneEuroFilter(SmoothOptions(enabled=False))
    off(np.zeros((K, 2)), 0.0)
    assert np.array_equal(off(x, 0.033), x), "--no-smooth must pass samples unchanged"
    # alpha for fc = 1 Hz, dt = 1/30: tau = 1/(2 pi), alpha = 1 / (1 + 30 / (2 pi))
    assert abs(smoothing_factor(1.0, 1 / 30) - 1 / (1 + 30 / (2 * math.pi))) < 1e-12

"""``edgepose profile``: speed / accuracy sweeps over resolutions, heads, backbones,
backends and precisions.

Modules, each usable alone:

- :mod:`~edgepose.profiling.sweep`   parse the sweep axes, plan the points, decide what is
  supported on this machine (pure functions, no torch import).
- :mod:`~edgepose.profiling.measure` latency / throughput / peak-memory harness.
- :mod:`~edgepose.profiling.runner`  build, export, load and measure one point.
- :mod:`~edgepose.profiling.report`  ``results.csv`` and ``results.md``.
- :mod:`~edgepose.profiling.plots`   ``accuracy_vs_fps.png`` and ``latency_vs_resolution.png``.
- :mod:`~edgepose.profiling.sysinfo` ``system.json``: machine and library versions.
"""

from edgepose.errors import EdgeposeError


class ProfileError(EdgeposeError):
    """A profile option that cannot be used (bad size, unknown head, unmatched checkpoint)."""


__all__ = ["ProfileError"]

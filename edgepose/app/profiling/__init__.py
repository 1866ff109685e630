"""``edgepose profile``: speed / accuracy sweeps over resolutions, heads, backbones,
backends and precisions.

Modules, each usable alone:

- :mod:`~edgepose.app.profiling.sweep`   parse the sweep axes, plan the points, decide what is
  supported on this machine (pure functions, no torch import).
- :mod:`~edgepose.app.profiling.measure` peak-memory harness (latency and throughput:
  :mod:`edgepose.engines.timing`, the one timing harness).
- :mod:`~edgepose.app.profiling.run_points`  build, export, load and measure one point.
- :mod:`~edgepose.app.profiling.results_files`  ``results.csv`` and ``results.md``.
- :mod:`~edgepose.app.profiling.plots`   ``accuracy_vs_fps.png`` and ``latency_vs_resolution.png``.
- :mod:`~edgepose.app.profiling.sysinfo` ``system.json``: machine and library versions.
"""

"""CUDA contexts for pycuda users (the TensorRT backend and the INT8 calibrator).

pycuda's ``Context.detach()`` on a *primary* context is ``cuPrimaryCtxRelease``: it never
pops, so a ``pop(); detach()`` close leaves a stale entry on that thread's context stack,
and from another thread (an inference thread, the garbage collector) it silently does
nothing and the retain leaks. So, like ``pycuda/autoprimaryctx.py``: retain each device's
primary context **once per process**, push/pop it around every piece of work in whatever
thread does it, and never detach (the driver releases it at process exit).
"""

from __future__ import annotations

import contextlib
import threading

_LOCK = threading.Lock()
_PRIMARY: dict[int, object] = {}


def primary_context(cuda, index: int = 0):
    """Device ``index``'s primary context, retained on first use and kept for the process."""
    with _LOCK:
        ctx = _PRIMARY.get(index)
        if ctx is None:
            ctx = cuda.Device(index).retain_primary_context()
            _PRIMARY[index] = ctx
        return ctx


@contextlib.contextmanager
def pushed(cuda, ctx):
    """Make ``ctx`` current in this thread for the block; pop it again on the way out."""
    ctx.push()
    try:
        yield ctx
    finally:
        cuda.Context.pop()

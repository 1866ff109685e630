"""The calibration package's user-facing error (an :class:`EdgeposeError`, so the CLI prints
it as one line without a traceback)."""

from __future__ import annotations

from edgepose.errors import EdgeposeError


class CalibrationError(EdgeposeError):
    """A calibration set that is too small, or a calibration cache made for another model."""

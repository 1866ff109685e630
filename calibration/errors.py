"""The calibration package's user-facing error.

:class:`CalibrationError` lives in :mod:`edgepose.errors` (an :class:`EdgeposeError`, so the
CLI prints it as one line without a traceback); it is re-exported here so
``from calibration.errors import CalibrationError`` keeps working.
"""

from __future__ import annotations

from edgepose.errors import CalibrationError

__all__ = ["CalibrationError"]

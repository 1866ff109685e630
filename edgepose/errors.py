"""User-facing errors.

Anything a *user* can get wrong (a missing file, a malformed annotation, an unknown
backbone name, a checkpoint from another model) raises :class:`EdgeposeError` with one
sentence that names the file or value and says what to do. The CLI prints that sentence
without a traceback and exits with status 2. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class EdgeposeError(Exception):
    """A user mistake or an unusable input, reported as one clear message."""


class DataError(EdgeposeError):
    """An annotation file, image or dataset folder that cannot be used."""


class ModelError(EdgeposeError):
    """An unknown model part, a corrupt checkpoint, or a metadata mismatch."""


class EngineError(EdgeposeError):
    """An artifact (ONNX / TensorRT plan) or runtime that cannot be used."""


class SourceError(EdgeposeError):
    """A camera, video file or stream that cannot be opened or read."""


class CalibrationError(EdgeposeError):
    """A calibration set that is too small, or a calibration cache made for another model."""


class TeacherError(EdgeposeError):
    """The labelling teacher (MediaPipe BlazePose, in its own venv) is missing or failed."""


class ConfigError(EdgeposeError):
    """A training configuration file or override that cannot be used."""


class ProfileError(EdgeposeError):
    """A profile option that cannot be used (bad size, unknown head, unmatched checkpoint)."""


class PipelineError(EdgeposeError):
    """A stage of the live pipeline failed; the message names the stage and the cause."""


class DeviceError(EngineError):
    """A --device the machine does not have (e.g. cuda without a CUDA GPU); a runtime
    that cannot be used, hence an EngineError."""


def last_line(text: str, default: str = "?") -> str:
    """The last non-blank line of a tool's output (what a one-line error quotes)."""
    return (text.strip().splitlines() or [default])[-1]

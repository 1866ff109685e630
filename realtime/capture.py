"""Capture thread: reads a source in the background so inference never waits on I/O.

Two modes:

* latest-frame (default, live sources): one slot; a new frame replaces an unconsumed one,
  which is counted in ``dropped``. ``get`` always returns the newest frame there is.
* ``every_frame=True`` (files, offline processing): a bounded FIFO; the reader waits when it
  is full (backpressure), so every frame reaches the consumer in order and nothing drops.

Frames carry ``id`` (0, 1, 2, ... in source order, continuing across reconnects) and
``t_capture`` (``time.perf_counter()`` right after the read returned). When the source ends,
``get`` raises :class:`EndOfStream` once every delivered frame is consumed; when it fails
(and reconnects are used up) ``get`` raises that error. Invariant after the stream ends or
``stop()``: ``produced == consumed + dropped``.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from edgepose.errors import SourceError


class EndOfStream(Exception):
    """The source has no more frames (end of file, finite demo). Not an error."""


@dataclass
class Frame:
    """One captured image. ``image``: (H, W, 3) BGR uint8; ``t_capture`` in perf_counter s."""

    id: int
    t_capture: float
    image: np.ndarray
    truth: dict | None = field(default=None, repr=False)
    t_media: float | None = None  # a video file's frame time in the video (s); live: None

    @property
    def t(self) -> float:
        """The frame's time for motion (smoothing) and logs: the video's own clock for a
        file, the capture clock for a live source."""
        return self.t_capture if self.t_media is None else self.t_media


@dataclass
class CaptureOptions:
    """``reconnect``: retries for a failing live source (backoff ``backoff_s`` doubling up
    to ``backoff_max_s``); ``queue_size``: FIFO depth in every-frame mode."""

    every_frame: bool = False
    queue_size: int = 4
    reconnect: int = 0
    backoff_s: float = 0.5
    backoff_max_s: float = 5.0
    join_timeout_s: float = 2.0


class CaptureThread:
    """Background reader over ``opener()`` (a function returning an open source).

    ``start()`` opens the source in the calling thread, so a missing camera or file raises
    its :class:`SourceError` right there; reading then happens in a daemon thread.
    """

    def __init__(self, opener: Callable[[], Any], opts: CaptureOptions | None = None):
        self.opener = opener
        self.opts = opts or CaptureOptions()
        self.source: Any = None
        self.produced = 0
        self.consumed = 0
        self.dropped = 0
        self.reconnects = 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._fifo: collections.deque[Frame] = collections.deque()
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_id = 0

    # ------------------------------------------------------------------ consumer side

    def start(self) -> "CaptureThread":
        self.source = self.opener()
        self._thread = threading.Thread(target=self._run, name="edgepose-capture", daemon=True)
        self._thread.start()
        return self

    @property
    def name(self) -> str:
        return getattr(self.source, "name", "source")

    @property
    def fps(self) -> float:
        return float(getattr(self.source, "fps", 0.0) or 0.0)

    def get(self, timeout: float | None = None) -> Frame:
        """The newest frame (latest mode) or the next one (every-frame mode).

        Raises ``TimeoutError`` when none arrives within ``timeout`` s, :class:`EndOfStream`
        after the last frame, or the source's error.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._take()
                if frame is not None:
                    self.consumed += 1
                    self._cond.notify_all()  # wake a reader waiting on a full FIFO
                    return frame
                if self._error is not None:
                    raise self._error
                if self._ended:
                    raise EndOfStream(self.name)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no frame from {self.name} within {timeout:.2f} s")
                self._cond.wait(remaining)

    @property
    def alive(self) -> bool:
        """Whether the reader thread is still running."""
        return self._thread is not None and self._thread.is_alive()

    def request_stop(self) -> None:
        """Ask the reader to stop without waiting. A source with an ``interrupt()`` method
        (e.g. one blocked waiting for data) is told to give up its current read."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        interrupt = getattr(self.source, "interrupt", None)
        if callable(interrupt):
            interrupt()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop reading, release the source; True if the thread ended within ``timeout``
        seconds (default ``opts.join_timeout_s``)."""
        self.request_stop()
        joined = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.opts.join_timeout_s if timeout is None else timeout)
            joined = not self._thread.is_alive()
        with self._cond:  # frames never handed out count as dropped
            if self._latest is not None:
                self.dropped += 1
                self._latest = None
            self.dropped += len(self._fifo)
            self._fifo.clear()
        if self._thread is None and self.source is not None:
            self._release()
        return joined

    def __enter__(self) -> "CaptureThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _take(self) -> Frame | None:
        if self.opts.every_frame:
            return self._fifo.popleft() if self._fifo else None
        frame, self._latest = self._latest, None
        return frame

    # ------------------------------------------------------------------ reader side

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    image = self.source.read()
                except Exception as e:  # noqa: BLE001 - surfaced to the consumer below
                    if not getattr(self.source, "live", False) or failures >= self.opts.reconnect:
                        raise
                    failures += 1
                    if not self._reopen(failures, e):
                        return
                    continue
                t = time.perf_counter()
                if image is None:
                    break
                failures = 0
                truth = getattr(self.source, "truth", None)
                self._push(Frame(self._next_id, t, image, truth,
                                 getattr(self.source, "t_media", None)))
                self._next_id += 1
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread
            if not isinstance(e, SourceError):
                e = SourceError(f"{self.name}: read failed mid-stream ({type(e).__name__}: {e})")
            with self._cond:
                self._error = e
                self._cond.notify_all()
        finally:
            self._release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _push(self, frame: Frame) -> None:
        with self._cond:
            self.produced += 1
            if self.opts.every_frame:
                while len(self._fifo) >= self.opts.queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._stop.is_set():
                    self.dropped += 1
                    return
                self._fifo.append(frame)
            else:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = frame
            self._cond.notify_all()

    def _reopen(self, attempt: int, cause: BaseException) -> bool:
        """Release, wait (interruptibly) and open again; False when stopped meanwhile."""
        self._release()
        delay = min(self.opts.backoff_s * 2 ** (attempt - 1), self.opts.backoff_max_s)
        while not self._stop.is_set():
            if self._stop.wait(delay):
                return False
            try:
                self.source = self.opener()
                self.reconnects += 1
                return True
            except SourceError:
                if attempt >= self.opts.reconnect:
                    raise SourceError(
                        f"{self.name}: lost ({cause}) and {self.opts.reconnect} reconnect "
                        "attempt(s) failed"
                    ) from None
                attempt += 1
                delay = min(self.opts.backoff_s * 2 ** (attempt - 1), self.opts.backoff_max_s)
        return False

    def _release(self) -> None:
        src = self.source
        if src is not None and not getattr(src, "_released", False):
            try:
                src.release()
            finally:
                try:
                    src._released = True
                except AttributeError:
                    pass

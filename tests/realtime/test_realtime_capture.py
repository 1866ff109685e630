"""Capture thread on a REAL video file (written with cv2.VideoWriter, frames numbered)."""

from __future__ import annotations

import time

import pytest
import rt_helpers as h

from edgepose.errors import SourceError
from edgepose.realtime.capture import CaptureOptions, CaptureThread, EndOfStream
from edgepose.realtime.sources import open_source, parse_source


def _opener(path):
    spec = parse_source(str(path))
    return lambda: open_source(spec)


def test_every_frame_delivers_all_frames_in_order(numbered_video):
    path, n = numbered_video
    cap = CaptureThread(_opener(path), CaptureOptions(every_frame=True, queue_size=3)).start()
    got = []
    try:
        while True:
            try:
                f = cap.get(timeout=5.0)
            except EndOfStream:
                break
            got.append((f.id, h.decode_index(f.image), f.t_capture))
            time.sleep(0.002)  # slower than the decoder: backpressure, not drops
    finally:
        assert cap.stop(), "capture thread did not stop"
    assert [g[0] for g in got] == list(range(n)), "frame ids not 0..n-1 in order"
    assert [g[1] for g in got] == list(range(n)), "decoded image indices out of order"
    ts = [g[2] for g in got]
    assert all(b >= a for a, b in zip(ts, ts[1:])), "t_capture not monotonic"
    assert cap.dropped == 0 and cap.produced == n == cap.consumed


def test_latest_frame_slow_consumer_gets_newest_and_counts_drops(numbered_video):
    path, n = numbered_video
    cap = CaptureThread(_opener(path), CaptureOptions(every_frame=False)).start()
    got = []
    try:
        while True:
            newest_before = cap.produced - 1  # newest frame id available before this get
            try:
                f = cap.get(timeout=5.0)
            except EndOfStream:
                break
            assert f.id >= newest_before, (
                f"got frame {f.id} although frame {newest_before} was already available")
            assert h.decode_index(f.image) == f.id, "frame id does not match the image"
            got.append(f.id)
            time.sleep(0.01)  # slow consumer
    finally:
        assert cap.stop(), "capture thread did not stop"
    assert got == sorted(set(got)), f"ids not strictly increasing: {got}"
    assert got[-1] == n - 1, "the last frame of the file must be delivered before the end"
    assert cap.produced == n, f"produced {cap.produced}, file has {n}"
    assert cap.dropped + cap.consumed == cap.produced, (
        f"dropped {cap.dropped} + consumed {cap.consumed} != produced {cap.produced}")
    assert cap.dropped > 0, "a slow consumer on a fast file must cause drops"


def test_latest_frame_with_paced_source_accounting():
    src = h.ScriptedSource(60, delay=0.002)
    cap = CaptureThread(lambda: src).start()
    got = []
    try:
        while True:
            newest_before = cap.produced - 1
            try:
                f = cap.get(timeout=2.0)
            except EndOfStream:
                break
            assert f.id >= newest_before and h.decode_index(f.image) == f.id
            got.append(f.id)
            time.sleep(0.005)
    finally:
        cap.stop()
    assert src.released, "source not released"
    assert cap.dropped + cap.consumed == cap.produced == 60
    assert 5 < len(got) < 60, f"expected some frames consumed and some dropped, got {len(got)}"


def test_read_error_mid_stream_is_raised_to_consumer():
    cap = CaptureThread(lambda: h.ScriptedSource(5, mode="raise"),
                        CaptureOptions(every_frame=True)).start()
    ids = []
    with pytest.raises(SourceError, match="simulated device read error"):
        while True:
            ids.append(cap.get(timeout=2.0).id)
    assert ids == list(range(5)), "frames before the error must still arrive in order"
    assert cap.stop()


def test_live_source_reconnects_then_gives_up():
    opened = []

    def opener():
        if len(opened) >= 3:
            raise SourceError("camera 7 could not be opened")
        src = h.ScriptedSource(4, mode="raise", live=True)
        opened.append(src)
        return src

    cap = CaptureThread(opener, CaptureOptions(every_frame=True, reconnect=2, backoff_s=0.01))
    cap.start()
    n = 0
    with pytest.raises(SourceError):
        while True:
            cap.get(timeout=2.0)
            n += 1
    assert len(opened) == 3, f"expected 1 open + 2 reconnects, got {len(opened)}"
    assert n == 12 and cap.reconnects == 2, (n, cap.reconnects)
    assert all(s.released for s in opened), "every opened source must be released"
    assert cap.stop()


def test_stop_interrupts_a_stalled_source_within_bound():
    src = h.ScriptedSource(2, mode="stall", live=True)
    cap = CaptureThread(lambda: src).start()
    cap.get(timeout=2.0)
    t0 = time.perf_counter()
    assert cap.stop(), "stop() did not join the capture thread"
    assert time.perf_counter() - t0 < 2.0
    assert src.released
    idle = CaptureThread(lambda: h.ScriptedSource(0, mode="stall", live=True)).start()
    try:
        with pytest.raises(TimeoutError):
            idle.get(0.05)
    finally:
        assert idle.stop()

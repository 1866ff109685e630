"""Atomically written artifacts get ordinary file permissions, not mkstemp's 0600."""

import os
import stat

from edgepose.fileio import atomic_write_bytes


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "model.bin"
        atomic_write_bytes(target, lambda f: f.write(b"abc"))
    finally:
        os.umask(old)
    assert target.read_bytes() == b"abc"
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o644, f"expected 0644 after umask 022, got {oct(mode)}"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temp file left behind"

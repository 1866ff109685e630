"""Atomic file writes and edgepose's cache folders, without heavy imports (usable where
torch is not installed)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def _default_mode() -> int:
    """rw for everyone the umask allows (what ``open()`` would give a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give a finished temp file (``mkstemp`` makes them 0600) normal permissions and
    rename it over ``path`` in one atomic step."""
    os.chmod(tmp, _default_mode())
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, writer) -> None:
    """Call ``writer(fileobj)`` on a temp file next to ``path``, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sha256_files(paths, names: bool = False, chunk: int = 1 << 20) -> str:
    """sha256 hex digest over the bytes of ``paths`` in order (each file's name before its
    bytes when ``names``: a folder's digest then changes when a file is renamed)."""
    h = hashlib.sha256()
    for path in paths:
        if names:
            h.update(Path(path).name.encode())
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    return sha256_files([path], chunk=chunk)


def cache_dir(name: str, env: str | None = None) -> Path:
    """Where edgepose keeps ``name`` (imported weights, a helper venv): ``$env`` when that
    variable is set, else ``$XDG_CACHE_HOME/edgepose/<name>`` (``~/.cache`` by default)."""
    if env and os.environ.get(env):
        return Path(os.environ[env])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgepose" / name

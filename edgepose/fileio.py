"""Atomic file writes and edgepose's cache folders, without heavy imports (usable where
torch is not installed)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from edgepose.errors import EdgeposeError


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


class OutputPathError(EdgeposeError):
    """An output path that cannot be written (one line from the CLI, before any work)."""


def _probe_writable(folder: Path, label: str) -> None:
    """Create and delete a file in ``folder``: the only test that also catches a
    read-only filesystem and a full disk's refusal (``os.access`` does not)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".edgepose-write-check.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputPathError(f"{label}: cannot write in {folder} ({e.strerror or e}); choose "
                              "another place") from None


def _make_folder(folder: Path, label: str) -> None:
    for p in [folder, *folder.parents]:
        if p.exists():
            if not p.is_dir():
                raise OutputPathError(f"{label}: {p} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"{label}: cannot create the folder {folder} "
                              f"({e.strerror or e})") from None


def check_output_file(path: str | os.PathLike, label: str = "output") -> Path:
    """Before any work: ``path`` can be created or replaced as a file. Its missing parent
    folders are made. Raises :class:`OutputPathError` (one line naming ``label``) for an
    existing folder at ``path``, a parent that is a file, or a place that cannot be written
    (permissions, read-only filesystem)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{label} {path} is a folder; give a file name "
                              f"(e.g. {path / 'out'}{path.suffix or ''})")
    _make_folder(path.parent, f"{label} {path}")
    _probe_writable(path.parent, f"{label} {path}")
    return path


def check_output_dir(path: str | os.PathLike, label: str = "output folder",
                     inputs=()) -> Path:
    """Before any work: folder ``path`` exists (made if needed) and is writable, and is not
    the folder of any of ``inputs`` (files the command reads): writing there could replace
    the originals."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{label} {path} is a file, not a folder")
    _make_folder(path, f"{label} {path}")
    _probe_writable(path, f"{label} {path}")
    real = path.resolve()
    for f in inputs:
        if Path(f).resolve().parent == real:
            raise OutputPathError(f"{label} {path} holds the inputs ({Path(f).name}, ...): "
                                  "writing there would overwrite them; choose another folder")
    return path

"""Atomic file writes: write a temporary file beside the target, fsync, then ``os.replace``.

A crash or a full disk leaves the previous file intact; ENOSPC becomes :class:`DiskFullError`.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.json"
    >>> atomic_write_text(p, "{}")
    >>> p.read_text()
    '{}'
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from kaggle_kit.errors import DiskFullError, KitError

__all__ = ["atomic_path", "atomic_dir", "atomic_write", "atomic_write_text", "atomic_write_json"]

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    ``suffix`` keeps the extension a writer insists on (Keras wants ``.keras``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the result should look like any other file
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno == errno.ENOSPC:
            raise DiskFullError(f"{path}: disk full while writing; the previous file is intact") from None
        raise KitError(f"{path}: could not write: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a folder path (not yet made) in a temporary folder beside ``path``; on success it takes
    ``path``'s place (whatever was there is moved aside first, then removed). For writers that make a
    folder, such as a TensorFlow SavedModel."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    out, old = work / "new", work / "old"
    try:
        yield out
        if not out.exists():
            raise KitError(f"{path}: the writer made nothing")
        if path.exists() or path.is_symlink():
            os.replace(path, old)
        os.replace(out, path)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise DiskFullError(f"{path}: disk full while writing; the previous copy is intact") from None
        raise KitError(f"{path}: could not write: {e.strerror or e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], Any], suffix: str | None = None) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path``."""
    with atomic_path(path, suffix) as tmp:
        write(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

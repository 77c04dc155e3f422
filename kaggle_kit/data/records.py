"""Fixed-size records on disk, read by index: the store behind the image and feature caches.

Reading a batch costs one ``pread`` per record, so memory stays flat however large the file is
(nothing is memory-mapped or loaded whole). Each open :class:`RecordFile` holds at most one file
descriptor, shared by every thread that reads it (``pread`` takes its own offset, so threads never
race on a file position); it opens on the first read and closes with :meth:`RecordFile.close`, when
the object is garbage-collected, or when the cache evicts the file (:func:`release`). A run's
descriptors therefore stay bounded however many epochs and reader threads it goes through.

Example:
    >>> import tempfile, numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "x.bin"
    >>> RecordFile.write(path, (2, 2), np.uint8, (np.full((2, 2), i, np.uint8) for i in range(3)))
    >>> with RecordFile(path, (2, 2), np.uint8) as f:
    ...     len(f), f.read([2, 0])[:, 0, 0].tolist()
    (3, [2, 0])
"""
from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from kaggle_kit.atomic import atomic_path

__all__ = ["RecordFile", "release"]

_OPEN: "weakref.WeakSet[RecordFile]" = weakref.WeakSet()   # every RecordFile holding a descriptor
_OPEN_LOCK = threading.Lock()


class _Descriptor:
    """One lazily opened descriptor; also the finaliser's target, so it must not refer to the RecordFile."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


class RecordFile:
    def __init__(self, path: Path, shape: Sequence[int], dtype: np.dtype | type) -> None:
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.record_bytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self._desc = _Descriptor()
        weakref.finalize(self, self._desc.close)

    def __len__(self) -> int:
        return self.path.stat().st_size // self.record_bytes

    def __enter__(self) -> "RecordFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the descriptor (a later read opens it again)."""
        self._desc.close()
        with _OPEN_LOCK:
            _OPEN.discard(self)

    def _fd(self) -> int:
        desc = self._desc
        with desc.lock:
            if desc.fd is None:
                desc.fd = os.open(self.path, os.O_RDONLY)
                with _OPEN_LOCK:
                    _OPEN.add(self)
            return desc.fd

    def read(self, indices: Sequence[int]) -> np.ndarray:
        out = np.empty((len(indices), *self.shape), self.dtype)
        view = out.view(np.uint8).reshape(len(indices), self.record_bytes)  # explicit: works for 0 rows
        if len(indices) == 0:
            return out
        fd = self._fd()
        for row, i in enumerate(indices):
            view[row] = np.frombuffer(os.pread(fd, self.record_bytes, int(i) * self.record_bytes), np.uint8)
        return out

    def read_all(self) -> np.ndarray:
        return self.read(range(len(self)))

    @staticmethod
    def write(path: Path, shape: Sequence[int], dtype: np.dtype | type, records: Iterable[np.ndarray]) -> None:
        """Write records in order, atomically: a crash leaves no half file under ``path``."""
        dtype = np.dtype(dtype)
        shape = tuple(shape)
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
            for rec in records:
                rec = np.ascontiguousarray(rec, dtype=dtype)
                if rec.shape[-len(shape):] != shape:
                    raise ValueError(f"record shape {rec.shape} does not end with {shape}")
                fh.write(rec.tobytes())


def release(path: Path) -> None:
    """Close the descriptors every open :class:`RecordFile` holds on ``path`` (the cache evicts it)."""
    target = os.path.abspath(path)
    with _OPEN_LOCK:
        holders = [f for f in _OPEN if os.path.abspath(f.path) == target]
    for f in holders:
        f.close()

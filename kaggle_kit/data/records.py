"""Fixed-size records on disk, read by index: the store behind the image and feature caches.

Reading a batch costs one ``pread`` per record, so memory stays flat however large the file is
(nothing is memory-mapped or loaded whole).

Example:
    >>> import tempfile, numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "x.bin"
    >>> RecordFile.write(path, (2, 2), np.uint8, (np.full((2, 2), i, np.uint8) for i in range(3)))
    >>> f = RecordFile(path, (2, 2), np.uint8)
    >>> len(f), f.read([2, 0])[:, 0, 0].tolist()
    (3, [2, 0])
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from kaggle_kit.atomic import atomic_path


class RecordFile:
    def __init__(self, path: Path, shape: Sequence[int], dtype: np.dtype | type) -> None:
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.record_bytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self._local = threading.local()

    def __len__(self) -> int:
        return self.path.stat().st_size // self.record_bytes

    def _fd(self) -> int:
        fd = getattr(self._local, "fd", None)
        if fd is None:
            fd = self._local.fd = os.open(self.path, os.O_RDONLY)
        return fd

    def read(self, indices: Sequence[int]) -> np.ndarray:
        out = np.empty((len(indices), *self.shape), self.dtype)
        view = out.view(np.uint8).reshape(len(indices), self.record_bytes)  # explicit: works for 0 rows
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

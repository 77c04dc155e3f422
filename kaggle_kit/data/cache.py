"""On-disk caches of decoded, resized images and of backbone features, keyed by what they depend on.

Later folds, epochs, runs and predictions skip decoding (and the frozen backbone) by reading them.
Each cache entry is a :class:`~kaggle_kit.data.records.RecordFile` plus a small JSON description;
``kaggle-kit cache ls|clear`` lists and removes them, and the oldest entries are dropped when the
cache grows past its bound (``KAGGLE_KIT_CACHE_GB``, default 20).

Example:
    >>> import tempfile
    >>> c = Cache(Path(tempfile.mkdtemp()))
    >>> c.entries()
    []
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from kaggle_kit.atomic import atomic_write_json
from kaggle_kit.data.images import load_resized
from kaggle_kit.data.manifest import Manifest
from kaggle_kit.data.records import RecordFile, release
from kaggle_kit.events import Report, Stage, quiet, ticker

__all__ = ["cache_key", "Entry", "Cache"]


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Entry:
    kind: str
    key: str
    path: Path
    bytes: int
    meta: dict

    @property
    def last_used(self) -> float:
        return self.path.stat().st_atime if self.path.exists() else 0.0


class Cache:
    """A folder of record files: ``<root>/<kind>/<key>.bin`` with ``<key>.json`` beside each."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        gb = float(os.environ.get("KAGGLE_KIT_CACHE_GB", "20"))
        self.max_bytes = max_bytes if max_bytes is not None else int(gb * 1e9)

    def paths(self, kind: str, key: str) -> tuple[Path, Path]:
        folder = self.root / kind
        return folder / f"{key}.bin", folder / f"{key}.json"

    def find(self, kind: str, key: str) -> RecordFile | None:
        """The cached records for ``key`` if they exist (shape and dtype read from their JSON)."""
        data, info = self.paths(kind, key)
        if not (data.is_file() and info.is_file()):
            return None
        try:
            meta = json.loads(info.read_text())
            found = RecordFile(data, meta["shape"], np.dtype(meta["dtype"]))
        except (ValueError, KeyError):
            return None
        os.utime(data)  # mark as recently used, as get_or_build does: eviction goes least recently used first
        return found

    def has(self, kind: str, key: str) -> bool:
        """Whether ``key`` is cached (read back, not computed, by :meth:`get_or_build`)."""
        data, info = self.paths(kind, key)
        return data.is_file() and info.is_file()

    def get_or_build(self, kind: str, key: str, shape: tuple[int, ...], dtype: Any,
                     produce: Callable[[], Iterator[np.ndarray]], meta: dict) -> RecordFile:
        """The cached records for ``key``, or build them with ``produce()`` (a generator of batches)."""
        data, info = self.paths(kind, key)
        if self.has(kind, key):
            os.utime(data)  # mark as recently used
            return RecordFile(data, shape, dtype)
        self.evict(reserve=int(np.prod(shape)) * np.dtype(dtype).itemsize * int(meta.get("n", 0)))
        RecordFile.write(data, shape, dtype, produce())
        atomic_write_json(info, {**meta, "kind": kind, "shape": list(shape), "dtype": np.dtype(dtype).str,
                                 "created": time.strftime("%Y-%m-%d %H:%M:%S")})
        return RecordFile(data, shape, dtype)

    def entries(self) -> list[Entry]:
        out = []
        for info in sorted(self.root.glob("*/*.json")):
            data = info.with_suffix(".bin")
            if not data.is_file():
                continue
            try:
                meta = json.loads(info.read_text())
            except ValueError:
                meta = {}
            out.append(Entry(kind=info.parent.name, key=info.stem, path=data, bytes=data.stat().st_size, meta=meta))
        return out

    def size(self) -> int:
        return sum(e.bytes for e in self.entries())

    def clear(self, kind: str | None = None) -> int:
        """Remove every entry (or every entry of ``kind``); returns the bytes freed."""
        freed = 0
        for e in self.entries():
            if kind in (None, e.kind):
                freed += e.bytes
                self._remove(e)
        return freed

    def evict(self, reserve: int = 0) -> None:
        """Drop the least recently used entries until ``reserve`` more bytes fit in the bound."""
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.bytes for e in entries)
        while entries and total + reserve > self.max_bytes:
            e = entries.pop(0)
            total -= e.bytes
            self._remove(e)

    @staticmethod
    def _remove(e: Entry) -> None:
        release(e.path)   # an open reader's descriptor would keep the evicted file's space in use
        e.path.unlink(missing_ok=True)
        e.path.with_suffix(".json").unlink(missing_ok=True)

    # -- the two caches the trainer uses -------------------------------------------------------
    @staticmethod
    def images_key(manifest: Manifest, size: int, resize: str) -> str:
        """The key of :meth:`images` (the time planner asks whether they are cached already)."""
        return cache_key(v=1, fingerprint=manifest.fingerprint, n=len(manifest), size=size, resize=resize)

    def images(self, manifest: Manifest, size: int, resize: str, report: Report = quiet) -> RecordFile:
        """Decoded RGB images of ``manifest`` at ``size`` x ``size``, uint8, in manifest order; ``report``
        hears a :class:`~kaggle_kit.events.Stage` (``cached`` when they are read back) and the progress."""
        key = self.images_key(manifest, size, resize)
        what = f"{len(manifest)} images at {size}px"
        cached = self.has("images", key)
        report(Stage(message=what if cached else f"caching {what}", cached=cached))
        progress = ticker(report, "cache")

        def produce() -> Iterator[np.ndarray]:
            chunk = 256
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                for start in range(0, len(manifest), chunk):
                    paths = manifest.paths[start:start + chunk]
                    yield np.stack(list(pool.map(lambda p: load_resized(p, size, resize), paths)))
                    progress(min(start + chunk, len(manifest)), len(manifest))

        meta = {"split": manifest.split, "root": str(manifest.root), "n": len(manifest), "size": size,
                "resize": resize}
        return self.get_or_build("images", key, (size, size, 3), np.uint8, produce, meta)



"""The data manifest: every usable image of a split as (id, path, label), each checked once.

Unreadable files are reported by path and left out, so nothing fails in the middle of an epoch.
Check results are cached by (path, size, mtime), so the second build of a manifest is instant.

Example:
    >>> import tempfile, numpy as np, cv2
    >>> from kaggle_kit.competition import Competition, Submission
    >>> from kaggle_kit.layouts import ClassFolders
    >>> root = Path(tempfile.mkdtemp())
    >>> for c in ("cat", "dog"):
    ...     (root / "train" / c).mkdir(parents=True)
    ...     _ = cv2.imwrite(str(root / "train" / c / "1.png"), np.zeros((4, 4, 3), np.uint8))
    >>> (root / "train" / "dog" / "2.jpg").write_bytes(b"")
    0
    >>> comp = Competition(slug="pets", classes=("cat", "dog"), metric="accuracy",
    ...                    train=ClassFolders(), submission=Submission())
    >>> m = build_manifest(comp, root, "train", cache_dir=root / ".cache")
    >>> len(m), m.labels.tolist(), m.excluded[0].reason
    (2, [0, 1], 'empty file (0 bytes)')
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write_json
from kaggle_kit.competition import Competition
from kaggle_kit.errors import DataError
from kaggle_kit.data.grouping import plugin_groups
from kaggle_kit.data.images import BadImage, ImageInfo, check_image
from kaggle_kit.events import Tick

__all__ = ["Split", "Excluded", "Manifest", "build_manifest", "stratified_sample", "check_all"]

Split = Literal["train", "test"]


@dataclass(frozen=True)
class Excluded:
    path: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    split: str
    root: Path
    ids: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: np.ndarray | None           # class indices, None for the test split
    infos: tuple[ImageInfo, ...]
    excluded: tuple[Excluded, ...] = ()
    fingerprint: str = ""
    groups: tuple[str, ...] | None = None   # an optional group per image (plugin group column or pattern)
    stats: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int]) -> "Manifest":
        idx = list(indices)
        return Manifest(
            split=self.split, root=self.root,
            ids=tuple(self.ids[i] for i in idx), paths=tuple(self.paths[i] for i in idx),
            labels=None if self.labels is None else self.labels[idx],
            infos=tuple(self.infos[i] for i in idx), excluded=self.excluded,
            fingerprint=_fingerprint([self.paths[i] for i in idx]),
            groups=None if self.groups is None else tuple(self.groups[i] for i in idx),
        )


def build_manifest(competition: Competition, root: Path, split: Split, *, cache_dir: Path,
                   limit: int | None = None, seed: int = 0, progress: Tick | None = None) -> Manifest:
    """List, label and check the images of ``split``; raise :class:`DataError` on a wrong layout."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found; fetch it with `kaggle-kit fetch {competition.slug}` "
                        f"or unzip the competition archive there")
    layout = competition.train if split == "train" else competition.test
    items = layout.items(root)
    labels = None
    if split == "train":
        where = f"{root / getattr(layout, 'folder', '')}"
        labels = np.array([competition.class_index(it.label or "", where) for it in items], dtype=np.int64)
        if limit:
            keep = stratified_sample(labels, limit, seed)
            items, labels = [items[i] for i in keep], labels[keep]
    checked = check_all([it.path for it in items], cache_dir, progress)
    good = [i for i, r in enumerate(checked) if isinstance(r, ImageInfo)]
    excluded = tuple(Excluded(str(items[i].path), r) for i, r in enumerate(checked) if isinstance(r, str))
    if split == "train":
        labels = labels[good]
        counts = np.bincount(labels, minlength=len(competition.classes))
        empty = [c for c, n in zip(competition.classes, counts) if n == 0]
        if empty:
            raise DataError(f"{root}: class(es) with no readable image: {', '.join(empty)} "
                            f"(expected layout: {layout.describe()})")
    if items and not good:
        raise DataError(f"{root}: none of the {len(items)} {split} images is readable")
    paths = [items[i].path for i in good]
    ids = tuple(items[i].id for i in good)
    groups = plugin_groups(competition, root, ids) if split == "train" else None   # see kaggle_kit.data.grouping
    return Manifest(split=split, root=root, ids=ids, paths=tuple(paths),
                    labels=labels, infos=tuple(checked[i] for i in good), excluded=excluded,
                    fingerprint=_fingerprint(paths), groups=groups)


def stratified_sample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of about ``n`` items keeping class proportions (at least 2 per class), sorted."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(2, round(n * len(idx) / len(labels)))
        keep.extend(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.array(keep))


def check_all(paths: Sequence[Path], cache_dir: Path, progress: Tick | None = None) -> list[ImageInfo | str]:
    """Check each image (in parallel), reusing results cached by path, size and mtime.

    Returns an :class:`ImageInfo` for a good image and the reason (a string) for a bad one.
    """
    cache_file = Path(cache_dir) / "checks" / (hashlib.sha1(str(Path(paths[0]).parent if paths else "").encode())
                                               .hexdigest()[:16] + ".json")
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    keys = []
    for p in paths:
        try:
            st = os.stat(p)
            keys.append(f"{p}|{st.st_size}|{st.st_mtime_ns}")
        except OSError:
            keys.append(f"{p}|missing")
    todo = [i for i, k in enumerate(keys) if k not in cache]

    def one(i: int) -> ImageInfo | str:
        try:
            return check_image(paths[i])
        except BadImage as e:
            return str(e)
        except OSError as e:
            return f"cannot read file ({e.strerror})"

    done = len(paths) - len(todo)
    if todo:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for i, result in zip(todo, pool.map(one, todo, chunksize=64)):
                cache[keys[i]] = result.__dict__ if isinstance(result, ImageInfo) else result
                done += 1
                if progress and done % 256 == 0:
                    progress(done, len(paths))
        atomic_write_json(cache_file, cache)
    if progress:
        progress(len(paths), len(paths))
    return [ImageInfo(**v) if isinstance(v, dict) else v for v in (cache[k] for k in keys)]


def _fingerprint(paths: Sequence[Path]) -> str:
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:16]

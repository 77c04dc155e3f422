"""The on-disk record cache: reuse, least-recently-used eviction, clearing, and the image cache."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

from kaggle_kit import events
from kaggle_kit.data import cache as cache_module
from kaggle_kit.data.cache import Cache, cache_key
from kaggle_kit.data.manifest import build_manifest
from kaggle_kit.project import Project

RECORD = (100,)          # 100 bytes per uint8 record


def producer(value: int, n: int = 1) -> tuple[Callable[[], Iterator[np.ndarray]], list[int]]:
    """A ``produce`` callable writing ``n`` records filled with ``value``, and its call log."""
    calls: list[int] = []

    def produce() -> Iterator[np.ndarray]:
        calls.append(value)
        yield np.full((n, *RECORD), value, np.uint8)

    return produce, calls


def build(c: Cache, key: str, value: int, kind: str = "images") -> list[int]:
    produce, calls = producer(value)
    c.get_or_build(kind, key, RECORD, np.uint8, produce, {"n": 1, "what": key})
    return calls


def set_last_used(c: Cache, kind: str, key: str, when: float) -> None:
    os.utime(c.paths(kind, key)[0], (when, when))


def test_get_or_build_reuses_an_entry(tmp_path: Path) -> None:
    c = Cache(tmp_path, max_bytes=10_000)
    produce, calls = producer(7, n=3)
    first = c.get_or_build("feat", "k1", RECORD, np.uint8, produce, {"n": 3})
    again = c.get_or_build("feat", "k1", RECORD, np.uint8, produce, {"n": 3})
    assert calls == [7]                                    # built once
    assert len(again) == 3 and (again.read_all() == 7).all()
    assert first.path == again.path == tmp_path / "feat" / "k1.bin"
    meta = json.loads((tmp_path / "feat" / "k1.json").read_text())
    assert (meta["kind"], meta["shape"], meta["n"]) == ("feat", [100], 3)
    found = c.find("feat", "k1")
    assert found is not None and (found.shape, found.dtype) == (RECORD, np.dtype(np.uint8))
    assert c.find("feat", "nope") is None


def test_evicts_the_least_recently_used_beyond_the_bound(tmp_path: Path) -> None:
    c = Cache(tmp_path, max_bytes=250)                     # room for two 100-byte entries
    build(c, "a", 1)
    build(c, "b", 2)
    set_last_used(c, "images", "a", 1_000)                 # a is older than b ...
    set_last_used(c, "images", "b", 2_000)
    assert build(c, "a", 1) == []                          # ... until it is used again (not rebuilt)
    build(c, "c", 3)                                       # needs room: b is now the least recently used
    assert sorted(e.key for e in c.entries()) == ["a", "c"]
    assert not c.paths("images", "b")[1].exists()          # its description went with it
    assert c.size() == 200
    assert (c.find("images", "a").read_all() == 1).all()


def test_an_entry_larger_than_the_bound_empties_the_cache_first(tmp_path: Path) -> None:
    c = Cache(tmp_path, max_bytes=150)
    build(c, "a", 1)
    produce, _ = producer(9, n=2)
    c.get_or_build("images", "big", RECORD, np.uint8, produce, {"n": 2})
    assert [e.key for e in c.entries()] == ["big"]


def test_clear_all_or_one_kind(tmp_path: Path) -> None:
    c = Cache(tmp_path, max_bytes=10_000)
    build(c, "a", 1, kind="images")
    build(c, "b", 2, kind="images")
    build(c, "f", 3, kind="features")
    entry = {e.key: e for e in c.entries()}["f"]
    assert (entry.kind, entry.bytes, entry.meta["what"]) == ("features", 100, "f")
    assert c.clear("images") == 200
    assert [(e.kind, e.key) for e in c.entries()] == [("features", "f")]
    assert c.clear() == 100
    assert c.entries() == [] and c.size() == 0
    assert list(tmp_path.glob("*/*")) == []


def test_bound_from_the_environment(tmp_path: Path, kit_env: pytest.MonkeyPatch) -> None:
    assert Cache(tmp_path).max_bytes == 20 * 10**9
    kit_env.setenv("KAGGLE_KIT_CACHE_GB", "0.5")
    assert Cache(tmp_path).max_bytes == 5 * 10**8
    assert Cache(tmp_path, max_bytes=7).max_bytes == 7


def test_cache_key_depends_on_every_part_not_their_order() -> None:
    assert cache_key(a=1, b="x") == cache_key(b="x", a=1)
    assert cache_key(a=1, b="x") != cache_key(a=2, b="x")
    assert cache_key(a=1) != cache_key(a=1, b=None)


def test_image_cache_decodes_once(tiny_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    comp = tiny_project.competition("tiny-pets")
    m = build_manifest(comp, tiny_project.data_root("tiny-pets"), "train", cache_dir=tiny_project.cache)
    decoded: list[Path] = []
    real = cache_module.load_resized

    def counting(path: Path, size: int, mode: str = "stretch") -> np.ndarray:
        decoded.append(path)
        return real(path, size, mode)

    monkeypatch.setattr(cache_module, "load_resized", counting)
    c = Cache(tiny_project.cache)
    seen: list[events.Event] = []
    images = c.images(m, 4, "stretch", report=seen.append)
    assert sorted(decoded) == sorted(m.paths)
    assert seen == [events.Stage(message="caching 6 images at 4px"), events.Progress(task="cache", done=6, total=6)]
    assert len(images) == len(m) == 6
    pixels = images.read_all()[:, 0, 0].tolist()
    assert pixels == [[200, 40, 40] if label == 0 else [40, 40, 200] for label in m.labels]

    decoded.clear()
    seen.clear()
    assert c.images(m, 4, "stretch", report=seen.append).path == images.path and decoded == []
    assert seen == [events.Stage(message="6 images at 4px", cached=True)]     # read back, and says so
    c.images(m, 6, "stretch")                                 # another size is another entry
    assert len(decoded) == 6
    assert len(c.entries()) == 2

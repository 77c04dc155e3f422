"""Fixed-size record files read by index, and the atomic writes they (and every kit file) rely on."""
from __future__ import annotations

import errno
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from kaggle_kit.atomic import atomic_path, atomic_write, atomic_write_json, atomic_write_text
from kaggle_kit.errors import DiskFullError, KitError
from kaggle_kit.data.records import RecordFile


def records(n: int) -> np.ndarray:
    return np.arange(n * 3 * 2, dtype=np.float32).reshape(n, 3, 2) * 1.5


def test_read_by_index_in_any_order(tmp_path: Path) -> None:
    data = records(10)
    path = tmp_path / "r.bin"
    RecordFile.write(path, (3, 2), np.float32, [data[:4], data[4:]])   # batches of records
    f = RecordFile(path, (3, 2), np.float32)
    assert len(f) == 10
    assert path.stat().st_size == 10 * 3 * 2 * 4
    got = f.read([7, 0, 7, 3])
    assert got.dtype == np.float32 and got.shape == (4, 3, 2)
    assert np.array_equal(got, data[[7, 0, 7, 3]])
    assert np.array_equal(f.read_all(), data)
    assert f.read([]).shape == (0, 3, 2)


def test_empty_record_file(tmp_path: Path) -> None:
    RecordFile.write(tmp_path / "e.bin", (3, 2), np.float32, [])
    f = RecordFile(tmp_path / "e.bin", (3, 2), np.float32)
    assert len(f) == 0 and f.read_all().shape == (0, 3, 2)


def test_single_records_and_threads_each_read_correctly(tmp_path: Path) -> None:
    path = tmp_path / "u8.bin"
    RecordFile.write(path, (4,), np.uint8, (np.full(4, i, np.uint8) for i in range(50)))
    f = RecordFile(path, (4,), np.uint8)

    def first_values(start: int) -> list[int]:
        return f.read(range(start, 50, 7))[:, 0].tolist()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(first_values, range(7)))
    assert results == [list(range(s, 50, 7)) for s in range(7)]


def test_wrong_record_shape_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    with pytest.raises(ValueError, match="does not end with"):
        RecordFile.write(path, (3, 2), np.float32, [records(2), np.zeros((2, 2, 3), np.float32)])
    assert list(tmp_path.iterdir()) == []


def test_failed_record_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    RecordFile.write(path, (3, 2), np.float32, [records(3)])
    before = path.read_bytes()

    def failing():
        yield records(5)
        raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError, match="decoder crashed"):
        RecordFile.write(path, (3, 2), np.float32, failing())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.bin"]


# -- atomic writes ---------------------------------------------------------------------------
def test_atomic_write_text_and_json(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "run.json"
    atomic_write_json(target, {"cv": 0.5, "path": Path("/x")})
    assert json.loads(target.read_text()) == {"cv": 0.5, "path": "/x"}
    atomic_write_text(target, "replaced")
    assert target.read_text() == "replaced"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask    # like any other file, not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["run.json"]


def test_writer_that_raises_leaves_the_old_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_text("old model")

    def half_write(tmp: Path) -> None:
        tmp.write_text("half a new mod")
        raise KeyboardInterrupt  # even an interrupt must not leave a half file

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_write, suffix=".keras")
    assert target.read_text() == "old model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_temporary_file_keeps_the_suffix_a_writer_needs(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "m.keras", suffix=".keras") as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path and tmp != tmp_path / "m.keras"
        tmp.write_text("x")
    assert (tmp_path / "m.keras").read_text() == "x"


@pytest.mark.parametrize("err, kind, text", [
    (errno.ENOSPC, DiskFullError, "disk full while writing; the previous file is intact"),
    (errno.EACCES, KitError, "could not write"),
])
def test_os_errors_become_one_line_kit_errors(tmp_path: Path, err: int, kind: type, text: str) -> None:
    target = tmp_path / "big.bin"
    target.write_text("previous")

    def fail(tmp: Path) -> None:
        tmp.write_text("partial")
        raise OSError(err, os.strerror(err))

    with pytest.raises(kind) as e:
        atomic_write(target, fail)
    assert str(e.value).startswith(f"{target}: ") and text in str(e.value)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]


# -- descriptors stay bounded (issue #12, fault 1) ---------------------------------------------
FD_SCRIPT = r"""
import os, resource, sys, threading
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from kaggle_kit.data.records import RecordFile, release

path = sys.argv[1]
RecordFile.write(path, (16,), np.uint8, (np.full(16, i % 251, np.uint8) for i in range(500)))
f = RecordFile(path, (16,), np.uint8)
baseline = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (baseline + 40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
peak = 0
for epoch in range(30):                        # new reader threads every epoch, as tf.data's pools are
    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda s: f.read(range(s, min(s + 32, 500))), range(0, 500, 32)))
    assert np.array_equal(np.concatenate(batches)[:, 0], np.arange(500) % 251)
    peak = max(peak, len(os.listdir("/proc/self/fd")))
release(path)
after = len(os.listdir("/proc/self/fd"))
print(baseline, peak, after)
"""


def test_descriptors_stay_bounded_over_many_epochs_and_threads(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FD_SCRIPT, str(tmp_path / "r.bin")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    baseline, peak, after = map(int, done.stdout.split())
    assert peak <= baseline + 2      # one shared descriptor (plus the listing's own), not one per thread
    assert after <= baseline         # released with the file


def test_closed_record_file_reopens_and_eviction_releases(tmp_path: Path) -> None:
    from kaggle_kit.data.cache import Cache

    cache = Cache(tmp_path, max_bytes=10**9)
    rec = cache.get_or_build("images", "k", (4,), np.uint8, lambda: iter([np.zeros((3, 4), np.uint8)]), {"n": 3})
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = fds()
    assert rec.read([1]).shape == (1, 4) and fds() == before + 1
    rec.close()
    assert fds() == before
    rec.read([0])                    # opens again on demand
    cache.clear()                    # eviction closes the reader's descriptor with the file
    assert fds() == before and not rec.path.exists()

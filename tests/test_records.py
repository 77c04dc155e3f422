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

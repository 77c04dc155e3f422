"""Shared pieces of the Kaggle tests: a tiny competition, a local server and a hermetic client setup.

The kit knows the tiny competition from its plugin (:data:`PLUGIN`), the server from its own
``competition.json`` (:data:`FACTS`), as a competitor's kit and Kaggle know a competition apart.

The tests import the fixtures from here (``from kaggle_helpers import ...``); pytest finds them in
the importing module. Everything lives under ``tmp_path``; the official client runs unmodified.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from kaggle_kit.kaggle.client import KaggleClient, RetryPolicy
from kaggle_kit.project import Project
from kaggle_local import UNSET, LocalKaggleServer

SLUG = "tiny-pets"
CLASSES = ("cat", "dog")
TRAIN = {"1": "cat", "2": "dog", "3": "cat", "4": "dog"}
TRUTH = {"1": "cat", "2": "dog", "3": "dog", "4": "cat", "5": "cat", "6": "dog"}   # test id -> label
USER, KEY = "testuser", "s3cret-test-key"

PLUGIN = f'''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import LabelsCSV, TestFolder

COMPETITION = Competition(
    slug="{SLUG}",
    classes={CLASSES!r},
    metric="accuracy",
    train=LabelsCSV(folder="train", csv="trainLabels.csv", id_column="id", label_column="label"),
    test=TestFolder(folder="test"),
    submission=Submission(id_column="id", label_column="label", labels="name", ids="stem",
                          sample="sampleSubmission.csv"),
)
'''


FACTS = {"metric": "accuracy", "id_column": "id", "labels": "name", "label_column": "label", "classes": list(CLASSES)}


def png(rgb: tuple[int, int, int], size: int = 4) -> bytes:
    """A tiny solid-colour PNG, written with the standard library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def csv_text(rows: dict[str, str]) -> str:
    return "id,label\n" + "".join(f"{k},{v}\n" for k, v in rows.items())


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def tiny_members(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    members = {f"train/{i}.png": png((200, 30, 30) if lab == "cat" else (30, 30, 200)) for i, lab in TRAIN.items()}
    members["trainLabels.csv"] = csv_text(TRAIN).encode()
    members.update({f"test/{i}.png": png((120, 120, 120)) for i in TRUTH})
    members["sampleSubmission.csv"] = csv_text({i: "cat" for i in TRUTH}).encode()
    members.update(extra or {})
    return members


def add_competition(root: Path, slug: str, members: dict[str, bytes], solution: str | None = None,
                    settings: dict | None = None) -> Path:
    """``<root>/<slug>/<slug>.zip`` (+ ``solution.csv`` and ``competition.json`` when given)."""
    archive = write_zip(root / slug / f"{slug}.zip", members)
    if solution is not None:
        (root / slug / "solution.csv").write_text(solution)
    if settings is not None:
        (root / slug / "competition.json").write_text(json.dumps(settings))
    return archive


def accuracy(pred: dict[str, str], ids) -> float:
    ids = list(ids)
    return sum(pred[i] == TRUTH[i] for i in ids) / len(ids)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A kit project with the tiny competition's plugin; KAGGLE_KIT_HOME points at it."""
    root = tmp_path / "project"
    (root / "competitions").mkdir(parents=True)
    (root / "competitions" / "tiny_pets.py").write_text(PLUGIN)
    monkeypatch.setenv("KAGGLE_KIT_HOME", str(root))
    monkeypatch.delenv("KAGGLE_KIT_COMPETITION", raising=False)
    return Project(root)


@pytest.fixture
def server_root(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    add_competition(root, SLUG, tiny_members(), solution=csv_text(TRUTH), settings=FACTS)
    return root


@contextmanager
def serving(root: Path, project: Project, home: Path, monkeypatch: pytest.MonkeyPatch,
            **options) -> Iterator[LocalKaggleServer]:
    """A local server on 127.0.0.1, with this process's environment pointed at it (hermetic HOME).

    ``project`` is the kit's side (its fixture points KAGGLE_KIT_HOME at it); the server takes nothing from it.
    """
    with LocalKaggleServer(root=root, users={USER: KEY}, **options) as srv:
        for name in UNSET:
            monkeypatch.delenv(name, raising=False)
        for name, value in srv.env(home).items():
            monkeypatch.setenv(name, value)
        yield srv


@pytest.fixture
def server(server_root: Path, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with serving(server_root, project, tmp_path / "home", monkeypatch) as srv:
        yield srv


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(server: LocalKaggleServer, sleeps: list[float]) -> KaggleClient:
    return KaggleClient(retry=RetryPolicy(attempts=4, base=1.0, cap=30.0, sleep=sleeps.append))


def names(server: LocalKaggleServer) -> list[str]:
    """The API methods (and ``download``/``upload``) the server has answered, in order."""
    return [r["name"] for r in server.requests()]


def run_cli(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``kaggle-kit`` (or ``kaggle`` with ``args[0] == 'kaggle'``) with this process's environment."""
    if args[0] == "kaggle":
        cmd = [sys.executable, "-m", "kaggle.cli", *args[1:]]
    else:
        cmd = [sys.executable, "-c", "import sys; from kaggle_kit.cli import main; sys.exit(main())", *args]
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


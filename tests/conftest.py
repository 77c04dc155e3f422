"""Shared fixtures: tiny images written on the spot, a hermetic environment and a tiny project.

Everything lives under ``tmp_path``; no real competition data is read.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from kaggle_kit.project import Project

WriteImage = Callable[..., Path]

TINY_SLUG = "tiny-pets"
TINY_PLUGIN = f'''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder

COMPETITION = Competition(
    slug="{TINY_SLUG}",
    classes=("cat", "dog"),
    metric="accuracy",
    train=ClassFolders(folder="train"),
    test=TestFolder(folder="test"),
    submission=Submission(id_column="id", label_column="label"),
)
'''


def write_solid_image(path: Path, rgb: tuple[int, int, int] = (0, 0, 0), size: int = 8) -> Path:
    """A solid ``size`` x ``size`` image in colour ``rgb`` (format from the suffix: .png, .jpg, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = np.empty((size, size, 3), np.uint8)
    bgr[:] = rgb[::-1]
    assert cv2.imwrite(str(path), bgr), path
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_bomb(width: int = 40000, height: int = 40000) -> bytes:
    """A valid 74-byte greyscale PNG whose IHDR declares ``width`` x ``height`` (one zlib-packed row)."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(bytes(range(9)), 9)) + _png_chunk(b"IEND", b""))


@pytest.fixture
def header_bomb() -> Callable[..., bytes]:
    """``header_bomb(width=40000, height=40000) -> bytes``: a tiny PNG declaring a huge size."""
    return png_header_bomb


@pytest.fixture
def write_image() -> WriteImage:
    """``write_image(path, rgb=(r, g, b), size=8) -> path``: a tiny solid image, parents created."""
    return write_solid_image


@pytest.fixture
def kit_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``KAGGLE_KIT_*`` variable from the caller's shell leaks into the test."""
    for name in ("KAGGLE_KIT_HOME", "KAGGLE_KIT_COMPETITION", "KAGGLE_KIT_COMPETITIONS",
                 "KAGGLE_KIT_CACHE", "KAGGLE_KIT_CACHE_GB", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_KIT_KAGGLE_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def tiny_project(tmp_path: Path, kit_env: pytest.MonkeyPatch) -> Project:
    """A project with one plugin (``tiny-pets``: cat/dog class folders, 3 images each, 2 test images)
    and its data under ``data/tiny-pets``."""
    root = tmp_path / "project"
    (root / "competitions").mkdir(parents=True)
    (root / "competitions" / "tiny_pets.py").write_text(TINY_PLUGIN)
    data = root / "data" / TINY_SLUG
    for label, rgb in {"cat": (200, 40, 40), "dog": (40, 40, 200)}.items():
        for i in range(3):
            write_solid_image(data / "train" / label / f"{i}.png", rgb)
    for i in range(2):
        write_solid_image(data / "test" / f"t{i}.png", (120, 120, 120))
    return Project(root)

"""A wheel of kaggle-kit itself, so a notebook with the internet off can ``pip install --no-index`` it.

The wheel is written here with the standard library (a pure-Python wheel is a zip with a
``*.dist-info`` folder), from the installed package's own files, so building it needs neither the
network nor a build backend. It declares no dependencies: a Kaggle notebook already has the kit's
(TensorFlow, Keras, numpy, pandas, OpenCV ...), and it is installed with ``--no-deps``. It is cached
under ``<cache>/wheels/<source hash>/``: the same sources give the same file, and changed sources a
new one.

Example:
    >>> import tempfile, zipfile
    >>> path = kit_wheel(Path(tempfile.mkdtemp()))
    >>> path.name
    'kaggle_kit-0.1.0-py3-none-any.whl'
    >>> "kaggle_kit/kaggle/wheel.py" in zipfile.ZipFile(path).namelist()
    True
"""
from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import kaggle_kit
from kaggle_kit.atomic import atomic_path

__all__ = ["kit_wheel", "source_files"]

PACKAGE = Path(kaggle_kit.__file__).parent
SUFFIXES = (".py", ".html")          # the code and its package data (bundled plugins, report template)
DIST = "kaggle_kit"


def source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                  and "__pycache__" not in p.parts)


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def kit_wheel(cache: Path) -> Path:
    """The wheel of the running kit's sources, built once per source hash into ``cache/wheels/``."""
    version = kaggle_kit.__version__
    files = [(f"{DIST}/{p.relative_to(PACKAGE).as_posix()}", p.read_bytes()) for p in source_files()]
    h = hashlib.sha256()
    for name, data in files:
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    path = Path(cache) / "wheels" / h.hexdigest()[:16] / f"{DIST}-{version}-py3-none-any.whl"
    if path.is_file():
        return path
    info = f"{DIST}-{version}.dist-info"
    files += [
        (f"{info}/METADATA", f"Metadata-Version: 2.1\nName: kaggle-kit\nVersion: {version}\n"
                             "Summary: kaggle-kit, for notebooks with the internet off (dependencies "
                             "not declared: install with --no-deps)\n".encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: kaggle-kit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{info}/top_level.txt", f"{DIST}\n".encode()),
    ]
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in files) + f"{info}/RECORD,,\n"
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files:
                zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data,
                            compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)), record)
    return path

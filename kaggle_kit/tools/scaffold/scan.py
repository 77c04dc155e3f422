"""The data folder as the scaffold sees it: images and CSVs (:func:`scan_folder`), the sample
submission (:func:`find_sample`), and the :class:`Finding` every later step records.

Example:
    >>> sort_labels(["10", "2", "2"]), counts_text({"cat": 3, "dog": 1})
    (('2', '10'), 'cat 3, dog 1')
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from kaggle_kit.errors import DataError
from kaggle_kit.layouts import IMAGE_EXTENSIONS, image_files

__all__ = ["IGNORED", "SAMPLE", "Finding", "FolderScan", "Sample", "scan_folder", "read_csv", "find_sample",
           "id_coverage", "is_named", "is_within", "posix_parent", "visible", "walk", "is_int", "is_number", "sort_labels",
           "counts_text"]

IGNORED = ("__MACOSX",)                 # archive debris, never data
SAMPLE = re.compile(r"sample.*submission.*\.csv$", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One decision about the plugin: what was chosen for ``field`` and why.

    ``check`` marks a guess the folder cannot confirm (the plugin says ``# TO CHECK``).
    """

    field: str
    value: str
    reason: str
    check: bool = False

    @property
    def comment(self) -> str:
        return f"TO CHECK: {self.reason}" if self.check else self.reason


@dataclass(frozen=True)
class FolderScan:
    """The data folder as the detectors see it.

    ``prefix`` is the single folder wrapping everything (an archive's top folder), or ``""``;
    ``image_dirs`` maps each folder holding images (relative to ``root``, at any depth below the
    prefix) to the images directly in it; ``csvs`` are the CSV files anywhere in ``root``.
    """

    root: Path
    prefix: str
    image_dirs: dict[str, list[Path]]
    csvs: tuple[Path, ...]
    tables: dict[Path, tuple[list[str], list[dict[str, str]]]] = field(default_factory=dict, repr=False)

    def table(self, path: Path) -> tuple[list[str], list[dict[str, str]]]:
        """A CSV's columns and rows, read once per scan."""
        if path not in self.tables:
            self.tables[path] = read_csv(path)
        return self.tables[path]

    @property
    def base(self) -> Path:
        return self.root / self.prefix if self.prefix else self.root

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def subdirs(self, folder: str) -> list[str]:
        """Image folders directly below ``folder``."""
        return [d for d in self.image_dirs if d != folder and posix_parent(d) == folder]

    def tree(self, folder: str) -> list[Path]:
        """The images in ``folder`` and every folder below it."""
        return [p for d, imgs in self.image_dirs.items() if is_within(d, folder) for p in imgs]

    def folders(self) -> list[str]:
        """Every folder holding images at some depth: the image folders and all their ancestors."""
        out = set(self.image_dirs)
        for d in self.image_dirs:
            while d != ".":
                d = posix_parent(d)
                out.add(d)
        return sorted(out)


def is_within(folder: str, ancestor: str) -> bool:
    """Whether ``folder`` is ``ancestor`` or below it (folders relative to the scan root, ``.`` the root)."""
    return ancestor == "." or folder == ancestor or folder.startswith(f"{ancestor}/")


def is_named(folder: str, prefix: str) -> bool:
    """Whether the folder's own name starts with ``prefix`` (``train``, ``Train_images``, ``TEST``)."""
    return folder.rsplit("/", 1)[-1].lower().startswith(prefix)


def posix_parent(folder: str) -> str:
    return folder.rsplit("/", 1)[0] if "/" in folder else "."


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED)


def walk(base: Path) -> tuple[list[Path], list[Path]]:
    """Every visible folder at or below ``base`` (breadth first, links not followed) and every CSV in them."""
    folders, csvs, level = [], [], [base]
    while level:
        folders += level
        nxt = []
        for folder in level:
            for p in visible(folder):
                if p.is_dir() and not p.is_symlink():
                    nxt.append(p)
                elif p.suffix.lower() == ".csv" and p.is_file():
                    csvs.append(p)
        level = nxt
    return folders, csvs


def scan_folder(root: Path) -> FolderScan:
    """Walk all of ``root`` for images and CSVs, at any depth, noting the folder that wraps everything
    (an archive's top folder) when that is all it holds."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (expected an unzipped competition folder, "
                        f"e.g. train/<class>/<image> and test/<image>)")
    base = root
    while True:
        entries = visible(base)
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].name.lower().startswith("train"):
            base = entries[0]
        else:
            break
    folders, csvs = walk(base)
    image_dirs = {f.relative_to(root).as_posix(): images for f in folders if (images := image_files(f))}
    if not image_dirs:
        raise DataError(f"{root}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in it or any folder "
                        f"below; expected e.g. train/<class>/<image> and test/<image>")
    prefix = base.relative_to(root).as_posix()
    return FolderScan(root=root, prefix="" if prefix == "." else prefix, image_dirs=image_dirs,
                      csvs=tuple(sorted(csvs)))


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: could not read CSV: {e}") from None


def is_int(value: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", value.strip()) is not None


def is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def sort_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Sorted distinct labels; integer labels sort as numbers (``2`` before ``10``)."""
    distinct = set(labels)
    if distinct and all(is_int(v) for v in distinct):
        return tuple(sorted(distinct, key=int))
    return tuple(sorted(distinct))


def counts_text(counts: Mapping[str, int], limit: int = 6) -> str:
    shown = [f"{name} {n}" for name, n in list(counts.items())[:limit]]
    more = f", ... {len(counts) - limit} more" if len(counts) > limit else ""
    return ", ".join(shown) + more


@dataclass(frozen=True)
class Sample:
    path: Path
    columns: list[str]
    rows: list[dict[str, str]]

    def values(self, column: str) -> list[str]:
        return [r[column].strip() for r in self.rows if r.get(column) is not None]


def find_sample(scan: FolderScan) -> tuple[Sample | None, list[Finding]]:
    found = sorted((p for p in scan.csvs if SAMPLE.search(p.name)), key=lambda p: (len(p.parts), p.name))
    if not found:
        return None, [Finding(field="submission", value="(none)", check=True,
                              reason="no *sample*submission*.csv in the folder: id column, label "
                                     "column and format are kit defaults")]
    columns, rows = scan.table(found[0])
    if len(columns) < 2:
        raise DataError(f"{found[0]}: a sample submission needs an id column and a label column; "
                        f"columns are {', '.join(columns) or '(none)'}")
    notes = []
    if len(found) > 1:
        notes.append(Finding(field="submission.sample", value=scan.rel(found[0]), check=True,
                             reason=f"{len(found)} sample submissions; used {scan.rel(found[0])}"))
    return Sample(found[0], columns, rows), notes


def id_coverage(ids: list[str], images: list[Path]) -> tuple[float, str]:
    """The share of ``ids`` naming an image, and whether they keep the extension (``name``) or not."""
    if not ids:
        return 0.0, "name"
    names = {p.name for p in images}
    stems = {p.stem for p in images}
    by_name = sum(i in names for i in ids) / len(ids)
    by_stem = sum(i in stems for i in ids) / len(ids)
    return (by_name, "name") if by_name >= by_stem else (by_stem, "stem")

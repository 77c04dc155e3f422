"""Dataset layouts: how a competition's files name its images and their classes.

A layout turns a data folder into a list of :class:`Item` (id, path, raw label). Layouts are
registered by name so plugins, the scaffold (``kaggle-kit new``) and the audit share them.

Each layout class states whether it yields labels (``labelled``: a train layout) or not (a test
layout); :func:`list_layouts` filters on it.

Example:
    >>> from pathlib import Path
    >>> ClassInFilename(folder="train").label_of(Path("senegalia (3).jpg"))
    'senegalia'
    >>> list_layouts(labelled=False)
    ['no_test', 'test_folder', 'test_tree']
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from kaggle_kit.errors import DataError
from kaggle_kit.registry import Registry

__all__ = ["IMAGE_EXTENSIONS", "Item", "Layout", "LAYOUTS", "list_layouts", "image_files", "natural_key",
           "require_folder", "ClassFolders", "LabelsCSV", "ClassInFilename", "TestFolder", "TestTree", "NoTest"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class Item:
    """One image: ``id`` is its path relative to the layout's folder (``img0.jpg``, ``cat/1.png``)."""

    id: str
    path: Path
    label: str | None = None


class Layout(Protocol):
    labelled: ClassVar[bool]    # its items carry class labels (a train layout)

    def items(self, root: Path) -> list[Item]: ...

    def describe(self) -> str: ...


LAYOUTS: Registry[type] = Registry("layout")


def list_layouts(*, labelled: bool | None = None) -> list[str]:
    """The layout names; ``labelled=True`` only train layouts, ``False`` only test layouts."""
    return [name for name in LAYOUTS if labelled is None or LAYOUTS.get(name).labelled == labelled]


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (``2.jpg`` before ``10.jpg``)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=natural_key)


def natural_key(path: Path | str) -> tuple:
    name = path.name if isinstance(path, Path) else path
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def require_folder(root: Path, folder: str, expected: str) -> Path:
    path = root / folder
    if not path.is_dir():
        raise DataError(f"{path}: folder not found (expected layout: {expected})")
    return path


@LAYOUTS.register("class_folders")
@dataclass(frozen=True, kw_only=True)
class ClassFolders:
    """``<folder>/<class>/<image>``: one sub-folder per class."""

    labelled: ClassVar[bool] = True

    folder: str = "train"

    def describe(self) -> str:
        return f"{self.folder}/<class>/<image>"

    def items(self, root: Path) -> list[Item]:
        base = require_folder(root, self.folder, self.describe())
        items = [
            Item(id=f"{sub.name}/{f.name}", path=f, label=sub.name)
            for sub in sorted(p for p in base.iterdir() if p.is_dir())
            for f in image_files(sub)
        ]
        if not items:
            raise DataError(f"{base}: no images in class sub-folders (expected layout: {self.describe()})")
        return items


@LAYOUTS.register("labels_csv")
@dataclass(frozen=True, kw_only=True)
class LabelsCSV:
    """A flat ``<folder>`` of images plus a CSV naming each image and its class.

    The id column may hold the file name (``a.jpg``) or the name without extension (``17``).
    """

    labelled: ClassVar[bool] = True

    folder: str = "train"
    csv: str = "train.csv"
    id_column: str = "id"
    label_column: str = "label"

    def describe(self) -> str:
        return f"{self.folder}/<image> + {self.csv} ({self.id_column},{self.label_column})"

    def items(self, root: Path) -> list[Item]:
        base = require_folder(root, self.folder, self.describe())
        csv_path = root / self.csv
        if not csv_path.is_file():
            raise DataError(f"{csv_path}: labels CSV not found (expected layout: {self.describe()})")
        by_name = {p.name: p for p in image_files(base)}
        by_stem = {p.stem: p for p in by_name.values()}
        with csv_path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing_cols = {self.id_column, self.label_column} - set(reader.fieldnames or [])
            if missing_cols:
                raise DataError(f"{csv_path}: missing column(s) {', '.join(sorted(missing_cols))}; "
                                f"columns are {', '.join(reader.fieldnames or [])}")
            rows = list(reader)
        items, missing = [], []
        for row in rows:
            key = row[self.id_column].strip()
            path = by_name.get(key) or by_stem.get(key)
            if path is None:
                missing.append(key)
            else:
                items.append(Item(id=path.name, path=path, label=row[self.label_column].strip()))
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise DataError(f"{csv_path}: {len(missing)} id(s) name no image in {base}: {shown}")
        if not items:
            raise DataError(f"{csv_path}: no rows (expected layout: {self.describe()})")
        return items


@LAYOUTS.register("class_in_filename")
@dataclass(frozen=True, kw_only=True)
class ClassInFilename:
    """A flat ``<folder>`` whose file names start with the class: ``anadenanthera_16.jpg``,
    ``senegalia (3).jpg``. ``pattern`` is matched against the file stem; its ``label`` group is the class."""

    labelled: ClassVar[bool] = True

    folder: str = "train"
    pattern: str = r"^(?P<label>.+?)[\s_\-.]*\(?\d+\)?$"

    def describe(self) -> str:
        return f"{self.folder}/<class><separator><number>.<ext>"

    def label_of(self, path: Path) -> str | None:
        m = re.match(self.pattern, path.stem)
        return m.group("label") if m else None

    def items(self, root: Path) -> list[Item]:
        base = require_folder(root, self.folder, self.describe())
        items, unmatched = [], []
        for f in image_files(base):
            label = self.label_of(f)
            if label is None:
                unmatched.append(f.name)
            else:
                items.append(Item(id=f.name, path=f, label=label))
        if unmatched:
            shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
            raise DataError(f"{base}: {len(unmatched)} file name(s) do not match {self.pattern!r}: {shown}")
        if not items:
            raise DataError(f"{base}: no images (expected layout: {self.describe()})")
        return items


@LAYOUTS.register("test_folder")
@dataclass(frozen=True, kw_only=True)
class TestFolder:
    """A flat folder of unlabelled test images; the submission id comes from each file name."""

    labelled: ClassVar[bool] = False

    folder: str = "test"

    def describe(self) -> str:
        return f"{self.folder}/<image>"

    def items(self, root: Path) -> list[Item]:
        base = require_folder(root, self.folder, self.describe())
        items = [Item(id=f.name, path=f) for f in image_files(base)]
        if not items:
            raise DataError(f"{base}: no test images (expected layout: {self.describe()})")
        return items


@LAYOUTS.register("test_tree")
@dataclass(frozen=True, kw_only=True)
class TestTree:
    """Unlabelled test images in sub-folders of ``folder`` at any depth (``TEST/<class>/<image>``, as
    archives of a labelled dataset ship their test split); the submission id comes from each file name."""

    labelled: ClassVar[bool] = False

    folder: str = "test"

    def describe(self) -> str:
        return f"{self.folder}/**/<image>"

    def items(self, root: Path) -> list[Item]:
        base = require_folder(root, self.folder, self.describe())
        files = sorted((p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                        and not any(part.startswith(".") for part in p.relative_to(base).parts)),
                       key=lambda p: tuple(natural_key(part) for part in p.relative_to(base).parts))
        items = [Item(id=f.relative_to(base).as_posix(), path=f) for f in files]
        if not items:
            raise DataError(f"{base}: no test images in it or below (expected layout: {self.describe()})")
        return items


@LAYOUTS.register("no_test")
@dataclass(frozen=True, kw_only=True)
class NoTest:
    """The competition has no test split (train-only datasets): nothing to predict or submit."""

    labelled: ClassVar[bool] = False

    def describe(self) -> str:
        return "(no test split)"

    def items(self, root: Path) -> list[Item]:
        return []

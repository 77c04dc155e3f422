"""Which folder holds the test images (:func:`find_test`) and which layout the training images
follow (:func:`find_train`): one detector per layout in :data:`DETECTORS`, the best match wins."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kaggle_kit.errors import DataError
from kaggle_kit.layouts import LAYOUTS, ClassFolders, ClassInFilename, Item, LabelsCSV, list_layouts
from kaggle_kit.registry import Registry
from kaggle_kit.tools.scaffold.scan import (SAMPLE, Finding, FolderScan, Sample, id_coverage, is_named, is_number,
                                            is_within, posix_parent)

__all__ = ["LABEL_HINTS", "Candidate", "Detector", "DETECTORS", "find_test", "find_train", "try_items",
           "detect_labels_csv", "detect_class_folders", "detect_class_in_filename", "candidate_folders",
           "expected_layouts", "holds_train", "below", "is_flat", "in_test"]

LABEL_HINTS = ("label", "class", "category", "target", "species", "type", "breed", "y")


def find_test(scan: FolderScan, sample: Sample | None) -> tuple[str | None, Finding]:
    """The folder of test images (at any depth, their sub-folders included): the one the sample
    submission's ids name, else the largest one called test*."""
    folders = {d: scan.tree(d) for d in scan.folders() if not holds_train(scan, d)}
    if not folders:
        return None, Finding(field="test", value="(none)", check=sample is not None,
                             reason="no test folder (every image folder is a train* folder or holds one)")
    if sample is not None:
        ids = sample.values(sample.columns[0])
        # train images may be numbered like the test ones (cifar-10): prefer the folder of the right size
        share, _, _, folder = max((id_coverage(ids, imgs)[0], -abs(len(imgs) - len(ids)), is_named(d, "test"), d)
                                  for d, imgs in folders.items())
        if share >= 0.5:
            return folder, Finding(field="test", value=f"{folder}/", reason=(
                f"inferred from {scan.rel(sample.path)}: {share:.0%} of its {len(ids)} ids name an image in "
                f"{folder}/ ({len(folders[folder])} images{below(scan, folder)})"))
    named = [d for d in folders if is_named(d, "test")]
    if named:
        folder = max(named, key=lambda d: (len(folders[d]), -d.count("/")))
        return folder, Finding(field="test", value=f"{folder}/",
                               reason=f"inferred from the folder name {folder}/ "
                                      f"({len(folders[folder])} unlabelled images{below(scan, folder)})")
    return None, Finding(field="test", value="(none)", check=sample is not None,
                         reason="no test folder (no folder named test*, none named by a sample submission)")


def holds_train(scan: FolderScan, folder: str) -> bool:
    """Whether ``folder`` is, is inside, or holds a folder named train* (the wrapping prefix aside):
    never the test folder, even when the sample's ids happen to name training images too."""
    start = len(scan.prefix) + 1 if scan.prefix else 0
    return any(is_named(part, "train") for d in scan.image_dirs if is_within(d, folder) or is_within(folder, d)
               for part in d[start:].split("/"))


def below(scan: FolderScan, folder: str) -> str:
    """``", in 4 sub-folders"`` when the test images sit in sub-folders of ``folder``."""
    subs = {d for d in scan.image_dirs if d != folder and is_within(d, folder)}
    return f", in {len(subs)} sub-folder{'s' if len(subs) > 1 else ''}" if subs else ""


def is_flat(scan: FolderScan, folder: str) -> bool:
    """Whether every image below ``folder`` sits directly in it (a :class:`TestFolder`, not a :class:`TestTree`)."""
    return len(scan.image_dirs.get(folder, [])) == len(scan.tree(folder))


@dataclass(frozen=True)
class Candidate:
    layout: Any
    items: list[Item]
    reason: str


Detector = Callable[[FolderScan, str, str | None], Candidate | None]
DETECTORS: Registry[Detector] = Registry("layout detector")   # keyed by the LAYOUTS name it builds


def try_items(layout: Any, root: Path) -> list[Item] | None:
    try:
        return layout.items(root)
    except DataError:
        return None


@DETECTORS.register("labels_csv")
def detect_labels_csv(scan: FolderScan, folder: str, test: str | None) -> Candidate | None:
    """A CSV (not the sample submission) with one column naming ``folder``'s images and another
    holding few distinct values (at most half as many as rows)."""
    images = scan.image_dirs.get(folder)
    if not images or in_test(folder, test):
        return None
    for path in scan.csvs:
        if SAMPLE.search(path.name):
            continue
        columns, rows = scan.table(path)
        if len(columns) < 2 or not rows:
            continue
        id_cols = [c for c in columns if id_coverage([r[c].strip() for r in rows], images)[0] == 1.0]
        label_cols = [c for c in columns if c not in id_cols
                      and 2 <= len({r[c].strip() for r in rows}) <= len(rows) // 2]
        if not id_cols or not label_cols:
            continue
        label_cols.sort(key=lambda c: c.lower() not in LABEL_HINTS)
        layout = LabelsCSV(folder=folder, csv=scan.rel(path), id_column=id_cols[0], label_column=label_cols[0])
        items = try_items(layout, scan.root)
        if items:
            also = f" (other candidates: {', '.join(label_cols[1:])})" if len(label_cols) > 1 else ""
            return Candidate(layout, items, f"{scan.rel(path)}: column {id_cols[0]!r} names the images in "
                                            f"{folder}/, column {label_cols[0]!r} holds the class{also}")
    return None


@DETECTORS.register("class_folders")
def detect_class_folders(scan: FolderScan, folder: str, test: str | None) -> Candidate | None:
    """``folder`` has at least two sub-folders of images (and the test folder is not one of them)."""
    subs = scan.subdirs(folder)
    if len(subs) < 2 or in_test(folder, test) or any(in_test(d, test) for d in subs):
        return None
    layout = ClassFolders(folder=folder)
    items = try_items(layout, scan.root)
    return Candidate(layout, items, f"{folder}/: {len(subs)} class folders") if items else None


@DETECTORS.register("class_in_filename")
def detect_class_in_filename(scan: FolderScan, folder: str, test: str | None) -> Candidate | None:
    """Every file name in ``folder`` is ``<class><separator><number>`` with a non-numeric class,
    and classes repeat (at least two of them, at most half as many as images)."""
    if folder not in scan.image_dirs or in_test(folder, test):
        return None
    layout = ClassInFilename(folder=folder)
    items = try_items(layout, scan.root)
    if not items:
        return None
    labels = {i.label for i in items}
    if not 2 <= len(labels) <= len(items) // 2 or any(is_number(str(v)) for v in labels):
        return None
    return Candidate(layout, items, f"{folder}/: file names start with the class")


def in_test(folder: str, test: str | None) -> bool:
    """Whether ``folder`` is the test folder or below it: never training images."""
    return test is not None and test != "." and is_within(folder, test)


def candidate_folders(scan: FolderScan) -> list[str]:
    """Folders that might hold the training images: image folders and their parents."""
    folders = set(scan.image_dirs) | {posix_parent(d) for d in scan.image_dirs}
    base = scan.prefix or "."
    return sorted(f for f in folders if f == base or f.startswith("" if base == "." else f"{base}/"))


def expected_layouts() -> str:
    labelled = list_layouts(labelled=True)
    return "; ".join(LAYOUTS.get(name)().describe() for name in labelled)


def find_train(scan: FolderScan, test: str | None) -> Candidate:
    """The best training layout: a folder named train* first, then the detector order, then size."""
    order = ["labels_csv", "class_folders", "class_in_filename"]
    found = []
    for folder in candidate_folders(scan):
        for rank, name in enumerate(order):
            cand = DETECTORS.get(name)(scan, folder, test)
            if cand is not None:
                found.append(((not is_named(folder, "train"), rank, -len(cand.items)), cand))
    if not found:
        raise DataError(f"{scan.root}: no labelled training images found (expected one of: "
                        f"{expected_layouts()})")
    return min(found, key=lambda x: x[0])[1]

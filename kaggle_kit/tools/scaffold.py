"""Scaffold a competition plugin from an unzipped data folder (``kaggle-kit new <slug>``).

:func:`infer_spec` looks at the folder: it recognises the training layout with the classes of
:mod:`kaggle_kit.layouts` (class sub-folders, a flat folder + labels CSV, the class in the file name),
finds the test folder, reads the sample submission for its id and label columns, guesses the metric and
the image size. :func:`render_plugin` writes that as plugin source with a comment on every guess
(``# inferred from ...``, ``# TO CHECK: ...``). :func:`scaffold` does both, writes
``competitions/<slug>.py`` and proves the file works: it loads it and lists the layout's images.

Example:
    >>> import tempfile, cv2, numpy as np
    >>> data = Path(tempfile.mkdtemp()) / "pets"
    >>> (data / "train").mkdir(parents=True)
    >>> for name in ("cat_1", "cat_2", "dog_1", "dog_2"):
    ...     _ = cv2.imwrite(str(data / "train" / f"{name}.png"), np.zeros((32, 32, 3), np.uint8))
    >>> spec = infer_spec("pets", data)
    >>> spec.classes, type(spec.train).__name__, spec.metric, spec.defaults
    (('cat', 'dog'), 'ClassInFilename', 'accuracy', {'image_size': 96})
    >>> "COMPETITION = Competition(" in render_plugin(spec)
    True
"""
from __future__ import annotations

import csv
import dataclasses
import json
import re
import statistics
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.competition import Submission
from kaggle_kit.errors import DataError, KitError
from kaggle_kit.layouts import (IMAGE_EXTENSIONS, LAYOUTS, ClassFolders, ClassInFilename, Item, LabelsCSV, NoTest,
                      TestFolder, image_files)
from kaggle_kit.registry import Registry

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
IGNORED = ("__MACOSX",)                 # archive debris, never data
SAMPLE = re.compile(r"sample.*submission.*\.csv$", re.IGNORECASE)
LABEL_HINTS = ("label", "class", "category", "target", "species", "type", "breed", "y")
SMALL_IMAGE, SMALL_SIZE, LARGE_SIZE = 64, 96, 224   # median longer side <= 64 px -> train at 96, else 224
IMBALANCE = 5.0                         # largest class / smallest class above this: flag the metric
FIELD_ORDER = ("train", "classes", "test", "submission", "metric", "defaults", "title")   # as the table lists them
SIZE_SAMPLE = 50                        # images opened to measure the median size


# -- value objects ---------------------------------------------------------------------------------
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


@dataclass(frozen=True, kw_only=True)
class PluginSpec:
    """Everything a generated plugin states, plus the findings behind each value."""

    slug: str
    title: str
    classes: tuple[str, ...]
    metric: str
    train: Any                          # a layout from kaggle_kit.layouts
    test: Any
    submission: Submission
    defaults: Mapping[str, Any]
    class_counts: Mapping[str, int]
    data: Path                          # the folder the spec was inferred from
    findings: tuple[Finding, ...] = ()

    def notes(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.field == name or f.field.startswith(f"{name}.")]

    @property
    def to_check(self) -> list[Finding]:
        return [f for f in self.findings if f.check]


@dataclass(frozen=True, kw_only=True)
class Validation:
    """What loading the written plugin and listing its layouts gave; ``error`` when it failed."""

    train_images: int = 0
    test_images: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, kw_only=True)
class ScaffoldResult:
    path: Path                          # the plugin file written
    spec: PluginSpec
    validation: Validation


# -- the folder ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FolderScan:
    """The data folder as the detectors see it.

    ``prefix`` is the single folder wrapping everything (an archive's top folder), or ``""``;
    ``image_dirs`` maps each folder holding images (relative to ``root``, at most two levels below
    the prefix) to its images.
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


def is_named(folder: str, prefix: str) -> bool:
    """Whether the folder's own name starts with ``prefix`` (``train``, ``Train_images``)."""
    return folder.rsplit("/", 1)[-1].lower().startswith(prefix)


def posix_parent(folder: str) -> str:
    return folder.rsplit("/", 1)[0] if "/" in folder else "."


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED)


def scan_folder(root: Path) -> FolderScan:
    """Walk ``root`` for images and CSVs, first stepping into the folder that wraps everything
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
    image_dirs: dict[str, list[Path]] = {}
    level = [base]
    for _depth in range(3):
        nxt = []
        for folder in level:
            images = image_files(folder)
            if images:
                image_dirs[folder.relative_to(root).as_posix()] = images
            nxt += [p for p in visible(folder) if p.is_dir()]
        level = nxt
    if not image_dirs:
        raise DataError(f"{root}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in it or "
                        f"two folders below; expected e.g. train/<class>/<image> and test/<image>")
    csvs = tuple(sorted([*base.glob("*.csv"), *base.glob("*/*.csv")]))
    prefix = base.relative_to(root).as_posix()
    return FolderScan(root=root, prefix="" if prefix == "." else prefix, image_dirs=image_dirs, csvs=csvs)


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


# -- the sample submission -------------------------------------------------------------------------
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


# -- the test split --------------------------------------------------------------------------------
def id_coverage(ids: list[str], images: list[Path]) -> tuple[float, str]:
    """The share of ``ids`` naming an image, and whether they keep the extension (``name``) or not."""
    if not ids:
        return 0.0, "name"
    names = {p.name for p in images}
    stems = {p.stem for p in images}
    by_name = sum(i in names for i in ids) / len(ids)
    by_stem = sum(i in stems for i in ids) / len(ids)
    return (by_name, "name") if by_name >= by_stem else (by_stem, "stem")


def find_test(scan: FolderScan, sample: Sample | None) -> tuple[str | None, Finding]:
    """The folder of test images: the one the sample submission's ids name, else one called test*."""
    if sample is not None:
        ids = sample.values(sample.columns[0])
        # train images may be numbered like the test ones (cifar-10): prefer the folder of the right size
        share, _, _, folder = max((id_coverage(ids, imgs)[0], -abs(len(imgs) - len(ids)), is_named(d, "test"), d)
                                  for d, imgs in scan.image_dirs.items())
        if share >= 0.5:
            return folder, Finding(field="test", value=f"{folder}/", reason=(
                f"inferred from {scan.rel(sample.path)}: {share:.0%} of its {len(ids)} ids name an image in "
                f"{folder}/ ({len(scan.image_dirs[folder])} images)"))
    named = [d for d in scan.image_dirs if is_named(d, "test")]
    if named:
        folder = max(named, key=lambda d: len(scan.image_dirs[d]))
        return folder, Finding(field="test", value=f"{folder}/",
                               reason=f"inferred from the folder name {folder}/ "
                                      f"({len(scan.image_dirs[folder])} unlabelled images)")
    return None, Finding(field="test", value="(none)", check=sample is not None,
                         reason="no test folder (no folder named test*, none named by a sample submission)")


# -- the training layout ---------------------------------------------------------------------------
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
    if not images or folder == test:
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
    if len(subs) < 2 or test in subs:
        return None
    layout = ClassFolders(folder=folder)
    items = try_items(layout, scan.root)
    return Candidate(layout, items, f"{folder}/: {len(subs)} class folders") if items else None


@DETECTORS.register("class_in_filename")
def detect_class_in_filename(scan: FolderScan, folder: str, test: str | None) -> Candidate | None:
    """Every file name in ``folder`` is ``<class><separator><number>`` with a non-numeric class,
    and classes repeat (at least two of them, at most half as many as images)."""
    if folder not in scan.image_dirs or folder == test:
        return None
    layout = ClassInFilename(folder=folder)
    items = try_items(layout, scan.root)
    if not items:
        return None
    labels = {i.label for i in items}
    if not 2 <= len(labels) <= len(items) // 2 or any(is_number(str(v)) for v in labels):
        return None
    return Candidate(layout, items, f"{folder}/: file names start with the class")


def candidate_folders(scan: FolderScan) -> list[str]:
    """Folders that might hold the training images: image folders and their parents."""
    folders = set(scan.image_dirs) | {posix_parent(d) for d in scan.image_dirs}
    base = scan.prefix or "."
    return sorted(f for f in folders if f == base or f.startswith("" if base == "." else f"{base}/"))


def expected_layouts() -> str:
    labelled = [name for name in LAYOUTS if name not in ("test_folder", "no_test")]
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


# -- submission format -----------------------------------------------------------------------------
def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def match_columns(columns: list[str], classes: tuple[str, ...]) -> tuple[str, ...] | None:
    """The probability column of each class, matched by name (``Type_1`` ~ ``type1``, ``is_cat`` ~ ``cat``)."""
    out = []
    for cls in classes:
        hits = [c for c in columns if norm(c) == norm(cls)] or [c for c in columns if norm(cls) in norm(c)]
        if len(hits) != 1:
            return None
        out.append(hits[0])
    return tuple(out) if len(set(out)) == len(out) else None


@dataclass(frozen=True)
class SubmissionGuess:
    submission: Submission
    classes: tuple[str, ...]          # the classes, reordered to the sample's probability columns if needed
    findings: list[Finding]


def infer_ids(sample: Sample, where: str, test: str | None, scan: FolderScan) -> tuple[str, Finding]:
    """``name`` when the sample's ids keep the test file's extension (``img0.jpg``), ``stem`` when not."""
    ids = sample.values(sample.columns[0])
    if test is None:
        kind = "name" if any(Path(i).suffix.lower() in IMAGE_EXTENSIONS for i in ids[:50]) else "stem"
        return kind, Finding(field="submission.ids", value=kind, check=True,
                             reason=f"no test folder to compare {where}'s ids with; guessed from how they look")
    share, kind = id_coverage(ids, scan.image_dirs[test])
    return kind, Finding(field="submission.ids", value=kind, check=share < 1.0, reason=(
        f"inferred from {where}: ids are test file names {'with' if kind == 'name' else 'without'} "
        f"the extension ({share:.0%} match {test}/)"))


def proba_format(sample: Sample, where: str, classes: tuple[str, ...],
                 base: dict[str, Any]) -> SubmissionGuess:
    """Several label columns: one probability per class, matched to the classes by name if possible."""
    cols = tuple(sample.columns[1:])
    note = Finding(field="submission.labels", value="proba",
                   reason=f"inferred from {where}: one probability column per class")
    if set(cols) == set(classes):       # the classes, in the sample's column order
        return SubmissionGuess(Submission(**base, labels="proba"), cols, [note])
    matched = match_columns(list(cols), classes) if len(cols) == len(classes) else None
    if matched:
        note = dataclasses.replace(note, reason=f"{note.reason}, matched to the classes by name")
        return SubmissionGuess(Submission(**base, labels="proba", proba_columns=matched), classes, [note])
    why = (f"{where}'s {len(cols)} probability columns are not named after the classes: column i is "
           f"assumed to hold class i of `classes`" if len(cols) == len(classes) else
           f"{where} has {len(cols)} label columns for {len(classes)} classes: could not infer which is which")
    return SubmissionGuess(Submission(**base, labels="proba", proba_columns=cols), classes,
                           [dataclasses.replace(note, check=True, reason=why)])


def label_format(sample: Sample, where: str, classes: tuple[str, ...]) -> tuple[str, Finding]:
    """One label column: class names, or integers (class indices)."""
    col = sample.columns[1]
    values = {v for v in sample.values(col) if v}
    if values and values <= set(classes):
        return "name", Finding(field="submission.labels", value="name",
                               reason=f"inferred from {where}: {col!r} holds class names")
    if values and all(is_int(v) for v in values):
        if classes == tuple(str(i) for i in range(len(classes))):
            return "index", Finding(field="submission.labels", value="index", reason=(
                f"inferred from {where}: {col!r} holds class indices; the classes are 0..{len(classes) - 1}"))
        order = ", ".join(f"{c}={i}" for i, c in enumerate(classes))
        return "index", Finding(field="submission.labels", value="index", check=True, reason=(
            f"{where} gives {col!r} as a class index; which index is which class could not be inferred: "
            f"sorted order assumed ({order}); reorder `classes` if the rules say otherwise"))
    if not values:
        why = f"{where} has no label values to tell class names from indices; class names assumed"
    elif all(is_number(v) for v in values):
        why = (f"{where} has one numeric column {col!r} (a single probability?); the kit submits one label "
               f"per image or one probability column per class: class names assumed")
    else:
        why = f"{where}: {col!r} holds values that are not class names ({', '.join(sorted(values)[:3])}); " \
              f"class names assumed"
    return "name", Finding(field="submission.labels", value="name", check=True, reason=why)


def infer_submission(scan: FolderScan, sample: Sample | None, test: str | None,
                     classes: tuple[str, ...]) -> SubmissionGuess:
    """The submission format the sample submission shows; kit defaults (TO CHECK) without one."""
    if sample is None:
        return SubmissionGuess(Submission(), classes, [])
    where = scan.rel(sample.path)
    ids, ids_note = infer_ids(sample, where, test, scan)
    notes = [Finding(field="submission.id_column", value=sample.columns[0],
                     reason=f"inferred from {where}: its first column"), ids_note]
    base: dict[str, Any] = dict(id_column=sample.columns[0], ids=ids, sample=where)
    if len(sample.columns) > 2:
        guess = proba_format(sample, where, classes, base)
        return dataclasses.replace(guess, findings=notes + guess.findings)
    kind, note = label_format(sample, where, classes)
    return SubmissionGuess(Submission(**base, label_column=sample.columns[1], labels=kind), classes, notes + [note])


# -- metric and training defaults -----------------------------------------------------------------
def infer_metric(submission: Submission, counts: Mapping[str, int], has_sample: bool) -> tuple[str, Finding]:
    """log_loss for probability columns, else accuracy; imbalance is flagged, not acted on: the metric
    is the competition's rule, which only its page states."""
    if submission.labels == "proba":
        return "log_loss", Finding(field="metric", value="log_loss",
                                   reason="inferred from the probability columns of the sample submission")
    ratio = max(counts.values()) / max(1, min(counts.values()))
    if ratio > IMBALANCE:
        return "accuracy", Finding(field="metric", value="accuracy", check=True, reason=(
            f"classes are imbalanced ({ratio:.0f}x between the largest and the smallest): the competition may "
            f"score f1_macro; accuracy kept until its rules say"))
    how = ("inferred from the sample submission: one label per image, no probabilities" if has_sample
           else "no sample submission to tell labels from probabilities: accuracy, the usual default")
    return "accuracy", Finding(field="metric", value="accuracy", check=not has_sample, reason=how)


def image_size_of(paths: list[Path]) -> int | None:
    """The median longer side of up to :data:`SIZE_SAMPLE` images spread over ``paths``."""
    from kaggle_kit.data.images import check_image

    step = max(1, len(paths) // SIZE_SAMPLE)
    sides = []
    for p in paths[::step][:SIZE_SAMPLE]:
        try:
            info = check_image(p)
        except (DataError, OSError):
            continue        # unreadable images are the audit's business, not the size estimate's
        sides.append(max(info.width, info.height))
    return int(statistics.median(sides)) if sides else None


def infer_defaults(items: list[Item]) -> tuple[dict[str, Any], Finding]:
    side = image_size_of([i.path for i in items])
    if side is None:
        return {"image_size": LARGE_SIZE}, Finding(field="defaults", value=str(LARGE_SIZE), check=True,
                                                   reason="no training image could be read to measure its size")
    size = SMALL_SIZE if side <= SMALL_IMAGE else LARGE_SIZE
    return {"image_size": size}, Finding(field="defaults", value=str(size), reason=(
        f"inferred from the median image side ({side} px): image_size {size}"))


# -- inference -------------------------------------------------------------------------------------
def check_slug(slug: str) -> None:
    if not SLUG.match(slug):
        raise KitError(f"{slug!r}: a competition slug is lowercase letters, digits and dashes, "
                       f"as in its Kaggle URL (e.g. pistolas-vs-smartphones)")


def infer_spec(slug: str, data: Path) -> PluginSpec:
    """Look at the data folder and decide everything a plugin for ``slug`` states."""
    check_slug(slug)
    scan = scan_folder(Path(data))
    findings = [Finding(field="title", value=slug, check=True, reason="the title as the competition's page writes it")]
    sample, notes = find_sample(scan)
    findings += notes
    test_folder, test_note = find_test(scan, sample)
    findings.append(test_note)
    train = find_train(scan, test_folder)
    findings.append(Finding(field="train", value=type(train.layout).__name__, reason=f"inferred from {train.reason}"))
    if scan.prefix and train.layout.folder != scan.prefix:
        findings.append(Finding(field="train", value=scan.prefix, reason=(
            f"the files sit in one wrapping folder {scan.prefix}/: every path here includes it")))

    counts = Counter(str(i.label) for i in train.items)
    classes = sort_labels(counts)
    if len(classes) < 2:
        raise DataError(f"{scan.root / train.layout.folder}: only one class ({classes[0]}); "
                        f"a competition needs at least two")
    class_counts = {c: counts[c] for c in classes}
    guess = infer_submission(scan, sample, test_folder, classes)
    classes = guess.classes
    source = "the sample submission's columns" if classes != sort_labels(counts) else (
        "the class folder names" if isinstance(train.layout, ClassFolders) else "the sorted distinct labels")
    findings.append(Finding(field="classes", value=", ".join(classes),
                            reason=f"inferred from {source}; images per class: {counts_text(class_counts)}"))
    findings += guess.findings
    metric, metric_note = infer_metric(guess.submission, class_counts, sample is not None)
    defaults, size_note = infer_defaults(train.items)
    findings += [metric_note, size_note]
    return PluginSpec(
        slug=slug,
        title=slug.replace("-", " ").title(),
        classes=classes,
        metric=metric,
        train=train.layout,
        test=TestFolder(folder=test_folder) if test_folder else NoTest(),
        submission=guess.submission,
        defaults=defaults,
        class_counts=class_counts,
        data=scan.root,
        findings=tuple(sorted(findings, key=lambda f: FIELD_ORDER.index(f.field.split(".")[0]))),
    )


# -- rendering -------------------------------------------------------------------------------------
def literal(value: Any) -> str:
    """Python source for a value, in the plugins' style (double quotes, raw strings for regexes)."""
    if isinstance(value, str):
        if "\\" in value and '"' not in value and not value.endswith("\\"):
            return f'r"{value}"'
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def call(obj: Any, indent: int, skip: Iterable[str] = ()) -> str:
    """``ClassName(field=value, ...)`` for a dataclass instance, leaving out ``None`` fields."""
    args = [f"{f.name}={literal(getattr(obj, f.name))}" for f in dataclasses.fields(obj)
            if f.init and getattr(obj, f.name) is not None and f.name not in skip]
    name = type(obj).__name__
    if not args:
        return f"{name}()"
    pad = " " * (indent + len(name) + 1)
    lines = [f"{name}("]
    for i, a in enumerate(args):
        piece = a + (", " if i < len(args) - 1 else ")")
        if len(lines[-1]) > len(pad) and indent + len(lines[-1].rstrip()) + len(piece.rstrip()) > 108:
            lines[-1] = lines[-1].rstrip()
            lines.append(pad)
        lines[-1] += piece
    return "\n".join(lines)


def comments(notes: list[Finding], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for note in notes:
        lines += textwrap.wrap(note.comment, width=108 - indent, initial_indent=f"{pad}# ",
                               subsequent_indent=f"{pad}#   ")
    return lines


def render_plugin(spec: PluginSpec) -> str:
    """The plugin file's source: docstring, imports, ``COMPETITION = Competition(...)``."""
    layouts = sorted({type(spec.train).__name__, type(spec.test).__name__})
    test = f", test {spec.test.describe()}" if not isinstance(spec.test, NoTest) else ", no test split"
    about = textwrap.fill(f"Generated by `kaggle-kit new {spec.slug}` from {spec.data.as_posix()}. Comments say "
                          f"where each value came from; confirm every \"TO CHECK\" against the competition's "
                          f"rules, then delete the comment.", width=100)
    doc = f'"""{spec.title}: {spec.train.describe()}{test}; {spec.metric}.\n\n{about}\n"""'
    skip = ("label_column",) if spec.submission.labels == "proba" else ()
    fields = [
        ("slug", literal(spec.slug), []),
        ("title", literal(spec.title), spec.notes("title")),
        ("classes", literal(spec.classes), spec.notes("classes")),
        ("metric", literal(spec.metric), spec.notes("metric")),
        ("train", call(spec.train, 10), spec.notes("train")),
        ("test", call(spec.test, 9), spec.notes("test")),
        ("submission", call(spec.submission, 15, skip), spec.notes("submission")),
        ("defaults", literal(dict(spec.defaults)), spec.notes("defaults")),
    ]
    lines = [doc,
             "from kaggle_kit.competition import Competition, Submission",
             f"from kaggle_kit.layouts import {', '.join(layouts)}",
             "",
             "COMPETITION = Competition("]
    for name, value, notes in fields:
        lines += comments(notes, 4)
        lines.append(f"    {name}={value},")
    lines.append(")")
    return "\n".join(lines) + "\n"


# -- writing and validating ------------------------------------------------------------------------
def plugin_path(competitions: Path, slug: str) -> Path:
    return Path(competitions) / f"{slug.replace('-', '_')}.py"


def validate_plugin(path: Path, data: Path) -> Validation:
    """Load the plugin, list its train and test images, map every label to a class and check the
    sample submission's ids against the test images: what training and submitting will do first."""
    from kaggle_kit.project import load_plugin
    from kaggle_kit.prediction.submission import expected_ids

    try:
        comp = load_plugin(path)
        train = comp.train.items(data)
        for item in train:
            comp.class_index(str(item.label), f"{path}: {item.path}")
        test = comp.test.items(data)
        if test:
            expected_ids(comp, data, [i.id for i in test])
    except KitError as e:
        return Validation(error=str(e))
    return Validation(train_images=len(train), test_images=len(test))


def scaffold(slug: str, data: Path, competitions: Path, *, force: bool = False,
             other_plugin_folders: Iterable[Path] = ()) -> ScaffoldResult:
    """Infer a plugin for ``slug`` from ``data``, write ``competitions/<slug>.py``, then validate it.

    Refuses to overwrite an existing file unless ``force``; refuses a slug whose plugin file already
    exists in ``other_plugin_folders`` (two plugins for one slug would clash when loaded).
    """
    check_slug(slug)
    path = plugin_path(competitions, slug)
    if path.exists() and not force:
        raise KitError(f"{path}: already exists; pass --force to overwrite it")
    for folder in other_plugin_folders:
        other = plugin_path(folder, slug)
        if other.exists() and other.resolve() != path.resolve():
            raise KitError(f"{other}: competition {slug!r} already has a plugin there; pick another slug")
    spec = infer_spec(slug, data)
    atomic_write_text(path, render_plugin(spec))
    return ScaffoldResult(path=path, spec=spec, validation=validate_plugin(path, spec.data))

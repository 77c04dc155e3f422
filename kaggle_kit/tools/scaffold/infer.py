"""From a scanned folder to a :class:`PluginSpec`: the submission format the sample submission
shows, the metric, the training defaults, and :func:`infer_spec`, which runs every step."""
from __future__ import annotations

import dataclasses
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kaggle_kit.competition import Submission
from kaggle_kit.errors import DataError, KitError
from kaggle_kit.layouts import IMAGE_EXTENSIONS, ClassFolders, NoTest, TestFolder, TestTree
from kaggle_kit.tools.scaffold.detect import find_test, find_train, is_flat
from kaggle_kit.tools.scaffold.recipes import infer_recipes
from kaggle_kit.tools.scaffold.scan import (Finding, FolderScan, Sample, counts_text, find_sample, id_coverage,
                                            is_int, is_number, scan_folder, sort_labels)

__all__ = ["SLUG", "SMALL_IMAGE", "SMALL_SIZE", "LARGE_SIZE", "IMBALANCE", "FIELD_ORDER", "SIZE_SAMPLE",
           "PluginSpec", "SubmissionGuess", "infer_spec", "check_slug", "infer_submission", "infer_ids",
           "proba_format", "label_format", "match_columns", "norm", "infer_metric", "image_size_of",
           "infer_defaults"]

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SMALL_IMAGE, SMALL_SIZE, LARGE_SIZE = 64, 96, 224   # median longer side <= 64 px -> train at 96, else 224
IMBALANCE = 5.0                         # largest class / smallest class above this: flag the metric
FIELD_ORDER = ("data", "train", "classes", "test", "submission", "metric", "symmetries", "defaults", "recipes",
               "title")   # as the table lists them
SIZE_SAMPLE = 50                        # images opened to measure the median size


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
    recipes: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    symmetries: str = "hflip"           # a mirrored image keeps its class: the usual case, to confirm
    data: Path                          # the folder the spec was inferred from
    findings: tuple[Finding, ...] = ()

    def notes(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.field == name or f.field.startswith(f"{name}.")]

    @property
    def to_check(self) -> list[Finding]:
        return [f for f in self.findings if f.check]


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
    share, kind = id_coverage(ids, scan.tree(test))
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


def infer_defaults(side: int | None) -> tuple[dict[str, Any], Finding]:
    if side is None:
        return {"image_size": LARGE_SIZE}, Finding(field="defaults", value=str(LARGE_SIZE), check=True,
                                                   reason="no training image could be read to measure its size")
    size = SMALL_SIZE if side <= SMALL_IMAGE else LARGE_SIZE
    return {"image_size": size}, Finding(field="defaults", value=str(size), reason=(
        f"inferred from the median image side ({side} px): image_size {size}"))


SYMMETRY_NOTE = Finding(field="symmetries", value="hflip", check=True, reason=(
    "hflip: a mirrored image keeps its class (photos, cartoons); \"d8\": every flip and quarter turn does "
    "(microscopy, cells, pollen, satellite); \"none\": a mirror can change it (text, digits). Training's "
    "views and TTA follow it"))


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
    side = image_size_of([i.path for i in train.items])
    defaults, size_note = infer_defaults(side)
    recipes, recipes_note = infer_recipes(images=len(train.items), side=side)
    findings += [metric_note, size_note, recipes_note, SYMMETRY_NOTE]
    return PluginSpec(
        slug=slug,
        title=slug.replace("-", " ").title(),
        classes=classes,
        metric=metric,
        train=train.layout,
        test=(NoTest() if test_folder is None else TestFolder(folder=test_folder) if is_flat(scan, test_folder)
              else TestTree(folder=test_folder)),
        submission=guess.submission,
        defaults=defaults,
        recipes=recipes,
        class_counts=class_counts,
        data=scan.root,
        findings=tuple(sorted(findings, key=lambda f: FIELD_ORDER.index(f.field.split(".")[0]))),
    )

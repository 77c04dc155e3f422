"""The saved result of ``kaggle-kit inspect``: the :class:`Audit` dataclasses and ``audit.json``.

An audit is written beside the data as ``data/<slug>/audit.json`` (in the project cache when the data
folder is read-only). It sits in the data stage because training reads it: :func:`audit_warnings`
gives the trainer the saved warnings without recomputing anything. Computing an audit is the tool's
job (:mod:`kaggle_kit.tools.audit`).

Example:
    >>> import tempfile
    >>> from kaggle_kit.competition import Competition, Submission
    >>> from kaggle_kit.layouts import ClassFolders
    >>> from kaggle_kit.project import Project
    >>> project = Project(Path(tempfile.mkdtemp()))
    >>> comp = Competition(slug="toy", classes=("a", "b"), metric="accuracy", train=ClassFolders(),
    ...                    submission=Submission())
    >>> audit_warnings(project, comp)      # never inspected: nothing to warn about
    []
    >>> [p.name for p in audit_paths(project, comp)]
    ['audit.json', 'toy.json']
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.competition import Competition
from kaggle_kit.errors import DataError, DiskFullError, KitError
from kaggle_kit.project import Project

__all__ = ["AUDIT_FILE", "FEW_ORIGINALS", "Summary", "GroupStats", "Unreadable", "Cluster", "TrainCopy", "Shortcut",
           "Audit", "save_audit", "audit_paths", "load_audit", "audit_warnings"]

AUDIT_FILE = "audit.json"
FEW_ORIGINALS = 0.5   # originals / images below this (two or more images per original on average): warn


@dataclass(frozen=True, kw_only=True)
class Summary:
    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Summary":
        v = np.asarray(values, dtype=float)
        if v.size == 0:
            return cls(min=0.0, median=0.0, max=0.0)
        return cls(min=round(float(v.min()), 3), median=round(float(np.median(v)), 3), max=round(float(v.max()), 3))


@dataclass(frozen=True, kw_only=True)
class GroupStats:
    """The images of one class (or of the test split, named ``test``)."""

    name: str
    count: int
    width: Summary
    height: Summary
    aspect: Summary                      # width / height
    kbytes: Summary                      # file size in KB
    sizes: list[tuple[str, int]]         # the most common "WxH" with their counts
    modes: dict[str, int]
    formats: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class Unreadable:
    split: str
    path: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """Train images that are copies of each other (same bytes, or within the near-duplicate threshold)."""

    ids: list[str]
    labels: list[str]

    @property
    def mixed(self) -> bool:
        return len(set(self.labels)) > 1


@dataclass(frozen=True, kw_only=True)
class TrainCopy:
    """A test image with a copy in train: the nearest train image, its class, their hash difference."""

    test_id: str
    train_id: str
    label: str
    difference: float                    # share of differing perceptual-hash signs (0 when identical)
    exact: bool                          # the same bytes


@dataclass(frozen=True, kw_only=True)
class Shortcut:
    """How well one image property alone predicts the class (cross-validated), with evidence."""

    feature: str
    accuracy: float
    baseline: float                      # always guessing the majority class
    lift: float                          # (accuracy - baseline) / (1 - baseline): share of the error removed
    flagged: bool
    evidence: str = ""


@dataclass(kw_only=True)
class Audit:
    slug: str
    data_root: str
    created: str
    threshold: float                     # near-duplicate: at most this share of hash signs differ
    fingerprint: str                     # of the train manifest audited
    classes: list[GroupStats]
    test: GroupStats | None
    unreadable: list[Unreadable]
    exact_train: list[Cluster]           # groups of identical train files
    near_train: list[Cluster]            # near-duplicate clusters in train (exact copies included)
    fold_groups: list[int]               # sizes of the groups of 2+ images --group-duplicates would form
    test_copies: list[TrainCopy]         # test images with a near (or exact) copy in train
    shortcuts: list[Shortcut]            # every property scored, flagged first (see find_shortcuts)
    originals: int = 0                   # the groups --group-duplicates would form (0: not counted)
    saved_to: str = ""

    @property
    def train_count(self) -> int:
        return sum(c.count for c in self.classes)

    def warnings(self, *, grouped: bool = False) -> list[str]:
        """One line per problem that can make CV or the leaderboard misleading.

        ``grouped``: the folds already keep near-duplicates together, so that advice is left out.
        """
        out = []
        flagged = [s for s in self.shortcuts if s.flagged]
        if flagged:
            top, rest = flagged[0], flagged[1:]
            also = f" (also: {', '.join(f'{s.feature} {s.accuracy:.2f}' for s in rest)})" if rest else ""
            out.append(f"{top.feature} predicts the class: {top.evidence}{also}")
        if self.test_copies:
            exact = sum(c.exact for c in self.test_copies)
            n_test = self.test.count if self.test else 0
            out.append(f"{len(self.test_copies)} of {n_test} test images are near-copies of train images "
                       f"({exact} identical files): the leaderboard rewards memorising them, which CV "
                       f"does not measure (listed in {AUDIT_FILE})")
        if self.near_train and not grouped:
            n = sum(len(c.ids) for c in self.near_train)
            out.append(f"{len(self.near_train)} near-duplicate cluster(s) hold {n} train images: copies on "
                       f"both sides of a split inflate CV; train with --group-duplicates")
        few = self.few_originals(grouped=grouped)
        if few:
            out.append(few)
        mixed = [c for c in self.near_train if c.mixed]
        if mixed:
            eg = ", ".join(f"{i} '{lab}'" for i, lab in zip(mixed[0].ids[:2], mixed[0].labels[:2]))
            out.append(f"{len(mixed)} near-duplicate cluster(s) mix classes (e.g. {eg}): label noise")
        return out

    def few_originals(self, *, grouped: bool = False) -> str:
        """The warning when the train set rests on few originals (fewer than :data:`FEW_ORIGINALS` per
        image), or ''. ``grouped``: the folds keep each original's copies together; CV is still noisy."""
        n = self.train_count
        if not (self.originals and n and self.originals / n < FEW_ORIGINALS):
            return ""
        head = f"about {self.originals:,} originals behind {n:,} images"
        if grouped:
            return f"{head}: CV rests on {self.originals:,} independent units and will read noisy"
        return f"{head}: CV will read optimistic and noisy; train with --group-duplicates"

    def recommendations(self) -> list[str]:
        return ["kaggle-kit train --group-duplicates (near-duplicates stay on one side of every split)"
                ] if self.near_train or self.fold_groups else []

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["warnings"] = self.warnings()
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Audit":
        d = json.loads(text)
        d.pop("warnings", None)

        def stats(s: dict | None) -> GroupStats | None:
            if s is None:
                return None
            return GroupStats(**{**s, **{k: Summary(**s[k]) for k in ("width", "height", "aspect", "kbytes")},
                                 "sizes": [tuple(x) for x in s["sizes"]]})

        return cls(**{**d, "classes": [stats(s) for s in d["classes"]], "test": stats(d["test"]),
                      "unreadable": [Unreadable(**u) for u in d["unreadable"]],
                      "exact_train": [Cluster(**c) for c in d["exact_train"]],
                      "near_train": [Cluster(**c) for c in d["near_train"]],
                      "test_copies": [TrainCopy(**c) for c in d["test_copies"]],
                      "shortcuts": [Shortcut(**s) for s in d["shortcuts"]]})


def save_audit(audit: Audit, project: Project, competition: Competition) -> Path:
    """Write ``audit.json`` beside the data, or in the project cache when the data folder is read-only."""
    for path in audit_paths(project, competition):
        audit.saved_to = str(path)
        try:
            atomic_write_text(path, audit.to_json())
            return path
        except DiskFullError:
            raise
        except (KitError, OSError):  # read-only data (a Kaggle notebook's /kaggle/input): try the cache
            continue
    raise KitError(f"{audit_paths(project, competition)[-1]}: could not write the audit")


def audit_paths(project: Project, competition: Competition) -> tuple[Path, Path]:
    """Where an audit is saved: beside the data first, else in the project cache."""
    return (project.data_root(competition.slug) / AUDIT_FILE,
            project.cache / "audit" / f"{competition.slug}.json")


def load_audit(project: Project, competition: Competition) -> Audit | None:
    """The most recent saved audit of ``competition``, or None when it was never inspected."""
    found = sorted((p for p in audit_paths(project, competition) if p.is_file()), key=lambda p: p.stat().st_mtime)
    if not found:
        return None
    try:
        return Audit.from_json(found[-1].read_text())
    except (ValueError, TypeError, KeyError) as e:
        raise DataError(f"{found[-1]}: not a readable audit ({e}); run `kaggle-kit inspect "
                        f"{competition.slug}` again") from None


def audit_warnings(project: Project, competition: Competition, *, grouped: bool = False) -> list[str]:
    """The saved audit's warnings (train/test near-copies, shortcuts, duplicate clusters); [] if none saved.

    Cheap: reads ``audit.json``, recomputes nothing. ``grouped``: the folds already group duplicates.
    An unreadable ``audit.json`` becomes a warning, not an error: training goes on without it.
    """
    try:
        audit = load_audit(project, competition)
    except DataError as e:
        return [str(e)]
    return audit.warnings(grouped=grouped) if audit else []

"""``kaggle-kit check <slug>``: a plugin, hand-written or generated, checked against its data the way
``kaggle-kit new`` reads a folder: the layouts list their images, every label is a class and every class
has images, the sample submission's ids are test images, its columns are the ones the plugin writes,
the metric fits the sample's format (probability columns: ``log_loss``), and the ``fast`` and ``best``
recipes exist and are valid settings.

:func:`check_plugin` returns a :class:`CheckReport`: ``problems`` (each one line; any makes the plugin
unusable for training or submitting), ``warnings`` (worth fixing, not fatal) and the counts behind the
summary. Nothing is printed here; the CLI renders the report.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_kit.metrics import METRICS, get_metric
from kaggle_kit.layouts import Item, NoTest, TestFolder, TestTree
from kaggle_kit.tools.scaffold.recipes import RECIPES
from kaggle_kit.tools.scaffold.scan import SAMPLE, counts_text, read_csv, walk

__all__ = ["SHOWN", "CheckReport", "check_plugin", "fits_format", "listed"]

SHOWN = 5                               # ids or labels named in one line


def fits_format(metric: str, proba: bool) -> bool:
    """Whether ``metric`` scores what a sample with (``proba``) or without probability columns holds."""
    return metric in METRICS and get_metric(metric).needs_proba == proba


def listed(values: list[str], limit: int = SHOWN) -> str:
    return ", ".join(values[:limit]) + (f", ... {len(values) - limit} more" if len(values) > limit else "")


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """What :func:`check_plugin` found; ``ok`` when there are no problems (warnings aside)."""

    slug: str
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    train_images: int = 0
    test_images: int = 0
    class_counts: Mapping[str, int] = field(default_factory=dict)
    sample: str | None = None           # the sample submission, as the messages write it
    sample_ids: int = 0
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def error(self) -> str | None:
        """The first problem, or None."""
        return self.problems[0] if self.problems else None


@dataclass
class _Checker:
    comp: Competition
    data: Path
    shown: Callable[[Path], str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def plugin(self) -> str:
        return self.shown(Path(self.comp.source)) if self.comp.source else self.comp.slug

    def at(self, layout_text: str) -> str:
        return f"{self.shown(self.data)}/{layout_text}"

    def items(self, layout) -> list[Item] | None:
        try:
            return layout.items(self.data)
        except KitError as e:
            self.problems.append(str(e).replace(str(self.data), self.shown(self.data)))
            return None

    def train(self) -> Counter:
        items = self.items(self.comp.train)
        if items is None:
            return Counter()
        counts = Counter(str(i.label) for i in items)
        where = self.at(self.comp.train.describe())
        classes = self.comp.classes
        unknown = [raw for raw in counts if self.comp.label_map.get(raw, raw) not in classes]
        for raw in unknown[:SHOWN]:
            self.problems.append(f"{where}: {counts[raw]} image(s) labelled {raw!r}, which is not one of the "
                                 f"classes in {self.plugin} ({', '.join(classes)})")
        if len(unknown) > SHOWN:
            self.problems.append(f"{where}: {len(unknown) - SHOWN} more labels not among the classes: "
                                 f"{listed(unknown[SHOWN:])}")
        by_class: Counter = Counter()
        for raw, n in counts.items():          # label_map may send several raw labels to one class
            by_class[self.comp.label_map.get(raw, raw)] += n
        for cls in classes:
            if not by_class[cls]:
                self.problems.append(f"{self.plugin}: class {cls!r} has no training images in {where}")
        return Counter({c: by_class[c] for c in classes})

    def test(self) -> list[str] | None:
        """The submission ids of the test images, or None when the test layout failed."""
        if isinstance(self.comp.test, NoTest):
            return []
        items = self.items(self.comp.test)
        if items is None:
            if isinstance(self.comp.test, TestFolder):
                tree = TestTree(folder=self.comp.test.folder)
                try:
                    nested = len(tree.items(self.data))
                except KitError:
                    nested = 0
                if nested:
                    self.problems[-1] += (f"; its {nested} images are in sub-folders: "
                                          f"test=TestTree(folder={tree.folder!r}) reads them")
            return None
        ids = [self.comp.submission.id_of(i.id) for i in items]
        dup = sorted(k for k, n in Counter(ids).items() if n > 1)
        if dup:
            self.problems.append(f"{self.at(self.comp.test.describe())}: {len(dup)} submission id(s) name more "
                                 f"than one test image (same file name in two folders): {listed(dup)}")
        return ids

    def sample(self, test_ids: list[str] | None) -> tuple[str | None, int]:
        fmt, classes = self.comp.submission, self.comp.classes
        path = self.comp.sample_path(self.data)
        if path is None:
            found = sorted((p for p in walk(self.data)[1] if SAMPLE.search(p.name)) if self.data.is_dir() else [],
                           key=lambda p: len(p.parts))
            if found:
                self.warnings.append(f"{self.plugin}: names no sample submission, but {self.shown(found[0])} is "
                                     f"one: set Submission(sample={found[0].relative_to(self.data).as_posix()!r}) "
                                     f"so ids and columns are checked against it")
            self.metric(fmt.labels == "proba", f"its submission format (labels={fmt.labels!r})")
            return None, 0
        where = self.shown(path)
        if not path.is_file():
            self.problems.append(f"{where}: sample submission not found ({self.plugin} names it)")
            return where, 0
        try:
            columns, rows = read_csv(path)
        except KitError as e:
            self.problems.append(str(e))
            return where, 0
        want = fmt.columns(classes)
        if set(columns) != set(want):          # Kaggle matches columns by name: their order does not matter
            lacks = [c for c in columns if c not in want]
            self.problems.append(f"{where}: columns are {', '.join(columns)}; {self.plugin} writes {', '.join(want)}"
                                 + (f" (no {', '.join(lacks)})" if lacks else ""))
        proba = len(columns) > 2
        self.metric(proba, f"{where}, which has " + (f"{len(columns) - 1} probability columns" if proba else
                                                      f"one label column{f' ({columns[1]})' if len(columns) > 1 else ''}"))
        if fmt.id_column not in columns:
            self.problems.append(f"{where}: no id column {fmt.id_column!r} ({self.plugin} names it)")
            return where, len(rows)
        ids = [r[fmt.id_column].strip() for r in rows]
        if test_ids is not None:
            test_at = self.at(self.comp.test.describe()) if not isinstance(self.comp.test, NoTest) else None
            have = set(test_ids)
            missing = [i for i in ids if i not in have]
            if missing and test_at is None:
                self.problems.append(f"{where}: {len(ids)} ids to predict, but {self.plugin} has no test images "
                                     f"(test=NoTest())")
            elif missing:
                self.problems.append(f"{where}: {len(missing)} of its {len(ids)} id(s) name no test image in "
                                     f"{test_at} (ids={fmt.ids!r}): {listed(missing)}")
            extra = sorted(have - set(ids))
            if extra and test_at is not None:
                self.warnings.append(f"{test_at}: {len(extra)} test image(s) not in {where}, predicted but not "
                                     f"submitted: {listed(extra)}")
        return where, len(ids)

    def metric(self, proba: bool, what: str) -> None:
        if not fits_format(self.comp.metric, proba):
            expect = "log_loss" if proba else "a label metric such as accuracy or f1_macro"
            self.problems.append(f"{self.plugin}: metric {self.comp.metric!r} does not fit {what}: "
                                 f"expected {expect}")

    def recipes(self) -> None:
        for name in RECIPES:
            if name not in self.comp.recipes:
                self.warnings.append(f"{self.plugin}: no {name!r} recipe, so `kaggle-kit train {self.comp.slug} "
                                     f"--recipe {name}` fails (`kaggle-kit new` writes both)")
        for name in self.comp.recipes:
            try:
                self.comp.config(name)
            except KitError as e:
                self.problems.append(f"{self.plugin}: recipe {name!r}: {e}")


def check_plugin(comp: Competition, data: Path, shown: Callable[[Path], str] = str) -> CheckReport:
    """Check ``comp`` against its data folder ``data``; ``shown`` writes a path in the messages."""
    data = Path(data)
    checker = _Checker(comp, data, shown)
    if not data.is_dir():
        checker.problems.append(f"{shown(data)}: data folder not found (`kaggle-kit fetch {comp.slug}`, or unzip "
                                f"the competition's files there)")
        checker.recipes()
        return CheckReport(slug=comp.slug, problems=tuple(checker.problems), warnings=tuple(checker.warnings))
    counts = checker.train()
    test_ids = checker.test()
    sample, n_ids = checker.sample(test_ids)
    checker.recipes()
    n_test = len(test_ids or [])
    summary = (f"{comp.slug}: {sum(counts.values())} training images in {len(comp.classes)} classes "
               f"({counts_text(counts)}); {n_test} test images")
    if sample:
        summary += f" cover the {n_ids} ids of {sample}; columns {', '.join(comp.submission.columns(comp.classes))}"
    summary += (f"; metric {comp.metric} fits the submission's "
                f"{'probability columns' if comp.submission.labels == 'proba' else 'label column'}")
    recipes = [r for r in ("default", *comp.recipes)]
    summary += f"; recipes {', '.join(recipes)}"
    return CheckReport(slug=comp.slug, problems=tuple(checker.problems), warnings=tuple(checker.warnings),
                       train_images=sum(counts.values()), test_images=n_test, class_counts=dict(counts),
                       sample=sample, sample_ids=n_ids, summary=summary)

"""The data audit behind ``kaggle-kit inspect``: what the images are, and what could mislead a model.

Per class: image counts, sizes, aspect ratios, file sizes, colour modes and formats; unreadable
files; exact duplicates (same bytes) and near-duplicates (perceptual hash, :mod:`kaggle_kit.data.phash`)
inside train and between train and test; and shortcuts: properties other than the content (image
size, area, aspect ratio, file size, colour mode, format) that predict the class under
cross-validation. The result is an :class:`Audit`, saved as ``data/<slug>/audit.json`` (in the project
cache when the data folder is read-only). The trainer reads its warnings with :func:`audit_warnings`
without recomputing anything, and :func:`duplicate_groups` gives leak-aware folds their groups.

Example:
    >>> import tempfile, numpy as np, cv2
    >>> from kaggle_kit.competition import Competition, Submission
    >>> from kaggle_kit.layouts import ClassFolders
    >>> from kaggle_kit.project import Project
    >>> project = Project(Path(tempfile.mkdtemp()))
    >>> rng = np.random.default_rng(0)
    >>> for c, (w, h) in {"a": (20, 15), "b": (30, 40)}.items():
    ...     (project.data_root("toy") / "train" / c).mkdir(parents=True)
    ...     for k in range(12):
    ...         img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    ...         _ = cv2.imwrite(str(project.data_root("toy") / "train" / c / f"{k}.png"), img)
    >>> comp = Competition(slug="toy", classes=("a", "b"), metric="accuracy", train=ClassFolders(),
    ...                    submission=Submission())
    >>> audit = run_audit(project, comp)
    >>> [(s.name, s.count, s.sizes[0]) for s in audit.classes]
    [('a', 12, ('20x15', 12)), ('b', 12, ('30x40', 12))]
    >>> audit.warnings()[0].split(":")[0]
    'image size predicts the class'
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.competition import Competition
from kaggle_kit.errors import DataError, DiskFullError, KitError
from kaggle_kit.training.folds import make_splits
from kaggle_kit.data.grouping import hash_cache
from kaggle_kit.data.images import ImageInfo
from kaggle_kit.data.manifest import Manifest, build_manifest
from kaggle_kit.data.phash import (DEFAULT_THRESHOLD, GROUP_COARSE_THRESHOLD, FileHashes, hash_files, near_graph,
                    nearest)
from kaggle_kit.project import Project
from kaggle_kit.registry import Registry

Report = Callable[..., None]   # report(kind, **fields), as the trainer's: "stage" and "progress"
AUDIT_FILE = "audit.json"
LIFT_WARNING = 0.5     # warn when a feature removes half the error of always guessing the majority class
MIN_IMAGES = 20        # fewer train images than this: no shortcut check (CV would be noise)


def _quiet(kind: str, **fields: Any) -> None:
    pass


# -- the audit's parts ------------------------------------------------------------------------------
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
        mixed = [c for c in self.near_train if c.mixed]
        if mixed:
            eg = ", ".join(f"{i} '{lab}'" for i, lab in zip(mixed[0].ids[:2], mixed[0].labels[:2]))
            out.append(f"{len(mixed)} near-duplicate cluster(s) mix classes (e.g. {eg}): label noise")
        return out

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


# -- running, saving, reading -----------------------------------------------------------------------
def run_audit(project: Project, competition: Competition, *, threshold: float = DEFAULT_THRESHOLD,
              report: Report = _quiet) -> Audit:
    """Audit the competition's data (hashes are cached, so a second audit is fast); nothing is saved."""
    root = project.data_root(competition.slug)

    def progress(task: str) -> Callable[[int, int], None]:
        return lambda done, total: report("progress", task=task, done=done, total=total)

    report("stage", message="checking images")
    train = build_manifest(competition, root, "train", cache_dir=project.cache, progress=progress("check train"))
    test = build_manifest(competition, root, "test", cache_dir=project.cache, progress=progress("check test"))
    report("stage", message=f"hashing {len(train) + len(test)} images (cached for later audits)")
    hashes = hash_files([*train.paths, *test.paths], hash_cache(project.cache, root), progress("hash"))
    h_train, h_test = hashes.take(0, len(train)), hashes.take(len(train))
    names = competition.classes
    report("stage", message="looking for duplicates and shortcuts")
    graph = near_graph(h_train.hashes, threshold, coarse=GROUP_COARSE_THRESHOLD)
    return Audit(
        slug=competition.slug, data_root=str(root), created=time.strftime("%Y-%m-%d %H:%M:%S"),
        threshold=threshold, fingerprint=train.fingerprint,
        classes=[group_stats(names[c], train.infos, h_train.nbytes, train.labels == c) for c in range(len(names))],
        test=group_stats("test", test.infos, h_test.nbytes, np.ones(len(test), bool)) if len(test) else None,
        unreadable=[Unreadable(split=m.split, path=e.path, reason=e.reason) for m in (train, test) for e in m.excluded],
        exact_train=[Cluster(ids=[train.ids[i] for i in g], labels=[names[train.labels[i]] for i in g])
                     for g in _same(h_train.digests)],
        near_train=clusters(train, graph.clusters(), names),
        fold_groups=sorted((int(n) for n in np.bincount(graph.clusters(coarse=True)) if n > 1), reverse=True),
        test_copies=train_copies(train, test, h_train, h_test, names, threshold),
        shortcuts=find_shortcuts(train.labels, train.infos, h_train.nbytes, names,
                                 test_infos=test.infos, test_nbytes=h_test.nbytes),
    )


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


# -- statistics -------------------------------------------------------------------------------------
def group_stats(name: str, infos: Sequence[ImageInfo], nbytes: np.ndarray, mask: np.ndarray) -> GroupStats:
    picked = [info for info, keep in zip(infos, mask) if keep]
    w = [i.width for i in picked]
    h = [i.height for i in picked]
    return GroupStats(
        name=name, count=len(picked), width=Summary.of(w), height=Summary.of(h),
        aspect=Summary.of([a / b for a, b in zip(w, h)]), kbytes=Summary.of(nbytes[mask] / 1024),
        sizes=Counter(f"{i.width}x{i.height}" for i in picked).most_common(3),
        modes=dict(Counter(i.mode for i in picked).most_common()),
        formats=dict(Counter(i.format for i in picked).most_common()),
    )


# -- duplicates -------------------------------------------------------------------------------------
def _same(keys: Sequence[str]) -> list[list[int]]:
    """Indices sharing a key, for every key held by two or more."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def clusters(train: Manifest, labels: np.ndarray, names: Sequence[str]) -> list[Cluster]:
    """The clusters of two or more train images, largest first."""
    members = _same([str(n) for n in labels])
    members.sort(key=len, reverse=True)
    return [Cluster(ids=[train.ids[i] for i in g], labels=[names[train.labels[i]] for i in g]) for g in members]


def train_copies(train: Manifest, test: Manifest, h_train: FileHashes, h_test: FileHashes,
                 names: Sequence[str], threshold: float) -> list[TrainCopy]:
    index, diff = nearest(h_test.hashes, h_train.hashes, threshold)
    by_digest = {d: i for i, d in enumerate(h_train.digests)}
    out = []
    for q, digest in enumerate(h_test.digests):
        exact = by_digest.get(digest)
        j = exact if exact is not None else int(index[q])
        if j >= 0:
            out.append(TrainCopy(test_id=test.ids[q], train_id=train.ids[j], label=names[train.labels[j]],
                                difference=0.0 if exact is not None else round(float(diff[q]), 4),
                                exact=exact is not None))
    out.sort(key=lambda c: (c.difference, c.test_id))
    return out


# -- shortcuts --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Feature:
    """An image property that is not its content. ``kind`` category: exact values; number: thresholds."""

    name: str
    kind: str                                              # "category" or "number"
    values: Callable[[Sequence[ImageInfo], np.ndarray], np.ndarray]
    show: Callable[[Any], str] = str                       # a value as the evidence states it
    verb: str = "have {feature} {value}"                   # how the evidence states a category


FEATURES: Registry[Feature] = Registry("shortcut feature")
CV_RULES: Registry[Callable[[np.ndarray, np.ndarray, list], float]] = Registry("shortcut rule")    # by kind
EVIDENCE: Registry[Callable[..., str]] = Registry("shortcut evidence")                            # by kind
for _f in (
    Feature(name="image size", kind="category", verb="are exactly {value}",
            values=lambda infos, nbytes: np.array([f"{i.width}x{i.height}" for i in infos])),
    Feature(name="image area", kind="number", show=lambda v: f"{v:,.0f} pixels",
            values=lambda infos, nbytes: np.array([i.width * i.height for i in infos], float)),
    Feature(name="aspect ratio", kind="number", show=lambda v: f"{v:.2f} (width/height)",
            values=lambda infos, nbytes: np.array([i.width / i.height for i in infos], float)),
    Feature(name="file size", kind="number", show=lambda v: f"{v / 1024:.1f} KB",
            values=lambda infos, nbytes: np.asarray(nbytes, float)),
    Feature(name="colour mode", kind="category", verb="are in colour mode {value}",
            values=lambda infos, nbytes: np.array([i.mode for i in infos])),
    Feature(name="file format", kind="category", verb="are {value} files",
            values=lambda infos, nbytes: np.array([i.format for i in infos])),
):
    FEATURES.add(_f.name, _f)


def find_shortcuts(labels: np.ndarray, infos: Sequence[ImageInfo], nbytes: np.ndarray, names: Sequence[str], *,
                   test_infos: Sequence[ImageInfo] = (), test_nbytes: np.ndarray | None = None) -> list[Shortcut]:
    """Score each :data:`FEATURES` entry alone by cross-validation; flag those far above the baseline.

    The evidence of a flagged one counts the train images per class, and the test images, it holds for.
    """
    counts = np.bincount(labels, minlength=len(names))
    folds = min(5, int(counts[counts > 0].min()))
    if len(labels) < MIN_IMAGES or folds < 2 or (counts > 0).sum() < 2:
        return []
    splits = make_splits(labels, folds=folds, seed=0)
    baseline = counts.max() / len(labels)
    out = []
    for name in FEATURES:
        feature = FEATURES.get(name)
        x = feature.values(infos, nbytes)
        accuracy = CV_RULES.get(feature.kind)(x, labels, splits)
        lift = (accuracy - baseline) / (1 - baseline) if baseline < 1 else 0.0
        flagged = lift >= LIFT_WARNING
        evidence = ""
        if flagged:
            test_x = feature.values(test_infos, test_nbytes) if len(test_infos) else None
            head = f"CV accuracy {accuracy:.2f} against {baseline:.2f} by always guessing '{names[counts.argmax()]}'"
            evidence = f"{head}; {EVIDENCE.get(feature.kind)(feature, x, labels, names, test_x)}"
        out.append(Shortcut(feature=feature.name, accuracy=round(float(accuracy), 4),
                            baseline=round(float(baseline), 4), lift=round(float(lift), 4), flagged=bool(flagged),
                            evidence=evidence))
    # flagged first; among them exact values (the most specific evidence) before thresholds
    out.sort(key=lambda s: (not s.flagged, s.flagged and FEATURES.get(s.feature).kind != "category", -s.lift))
    return out


@CV_RULES.register("category")
def majority_per_value(x: np.ndarray, labels: np.ndarray, splits: list) -> float:
    """Cross-validated accuracy of predicting each value's majority class.

    Values seen fewer than twice in the training fold (and values it never saw) share one bucket,
    so "every smartphone has its own size" is learnt as well as "most pistols are 160x120".
    """
    codes = np.unique(x, return_inverse=True)[1].ravel()
    n_classes, other = int(labels.max()) + 1, int(codes.max()) + 1
    correct = 0
    for tr, va in splits:
        frequent = np.bincount(codes[tr], minlength=other + 1) >= 2
        bucket = np.where(frequent[codes], codes, other)
        table = np.zeros((other + 1, n_classes))
        np.add.at(table, (bucket[tr], labels[tr]), 1)
        seen = table[bucket[va]]
        fallback = np.bincount(labels[tr], minlength=n_classes).argmax()
        pred = np.where(seen.sum(1) > 0, seen.argmax(1), fallback)
        correct += int((pred == labels[va]).sum())
    return correct / len(labels)


@CV_RULES.register("number")
def shallow_tree(x: np.ndarray, labels: np.ndarray, splits: list) -> float:
    """Cross-validated accuracy of a depth-2 decision tree on the one number."""
    from sklearn.tree import DecisionTreeClassifier

    correct = 0
    for tr, va in splits:
        tree = DecisionTreeClassifier(max_depth=2, min_samples_leaf=5, random_state=0).fit(x[tr, None], labels[tr])
        correct += int((tree.predict(x[va, None]) == labels[va]).sum())
    return correct / len(labels)


@EVIDENCE.register("category")
def category_evidence(feature: Feature, x: np.ndarray, labels: np.ndarray, names: Sequence[str],
                      test_x: np.ndarray | None) -> str:
    """The value most specific to one class: '350 of 391 'pistol' images are exactly 160x120 and ...'."""
    best: tuple[int, Any, int] | None = None
    for value in np.unique(x):
        per_class = np.bincount(labels[x == value], minlength=len(names))
        c = int(per_class.argmax())
        net = int(per_class[c] - (per_class.sum() - per_class[c]))
        if best is None or net > best[0]:
            best = (net, value, c)
    _, value, c = best  # type: ignore[misc]
    phrase = feature.verb.format(feature=feature.name, value=value)
    inside, outside = x[labels == c] == value, x[labels != c] == value
    test = "" if test_x is None else f"; test: {int((test_x == value).sum())} of {len(test_x)} images {phrase}"
    return f"{inside.sum()} of {inside.size} '{names[c]}' images {phrase}, {_others(outside, labels, c, names)}{test}"


@EVIDENCE.register("number")
def number_evidence(feature: Feature, x: np.ndarray, labels: np.ndarray, names: Sequence[str],
                    test_x: np.ndarray | None) -> str:
    """The best single threshold: '340 of 391 'pistol' images have file size < 6.1 KB, ...'."""
    from sklearn.tree import DecisionTreeClassifier

    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(x[:, None], labels)
    cut = float(stump.tree_.threshold[0])
    below = x <= cut
    gaps = [abs(below[labels == c].mean() - below[labels != c].mean()) for c in range(len(names))
            if (labels == c).any() and (labels != c).any()]
    c = int(np.argmax(gaps))
    side = below if below[labels == c].mean() >= below[labels != c].mean() else ~below
    op = "<=" if side is below else ">"
    inside, outside = side[labels == c], side[labels != c]
    test = ""
    if test_x is not None:
        test_side = (test_x <= cut) if op == "<=" else (test_x > cut)
        test = f"; test: {int(test_side.sum())} of {len(test_x)} images have it"
    return (f"{inside.sum()} of {inside.size} '{names[c]}' images have {feature.name} {op} {feature.show(cut)}, "
            f"{_others(outside, labels, c, names)}{test}")


def _others(outside: np.ndarray, labels: np.ndarray, c: int, names: Sequence[str]) -> str:
    present = sorted(set(labels.tolist()) - {c})
    who = f"'{names[present[0]]}'" if len(present) == 1 else "other"
    return f"against {int(outside.sum())} of {outside.size} {who} images"

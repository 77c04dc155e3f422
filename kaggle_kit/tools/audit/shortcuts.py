"""Shortcuts: image properties other than the content (size, area, aspect ratio, file size, colour
mode, format) that predict the class under cross-validation. Each property is a :data:`FEATURES`
entry; its ``kind`` picks the cross-validated rule (:data:`CV_RULES`) and the evidence (:data:`EVIDENCE`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from kaggle_kit.data.audit_record import Shortcut
from kaggle_kit.data.images import ImageInfo
from kaggle_kit.registry import Registry
from kaggle_kit.training.folds import make_splits

__all__ = ["LIFT_WARNING", "MIN_IMAGES", "Feature", "FEATURES", "CV_RULES", "EVIDENCE", "find_shortcuts",
           "majority_per_value", "shallow_tree", "category_evidence", "number_evidence"]

LIFT_WARNING = 0.5     # warn when a feature removes half the error of always guessing the majority class
MIN_IMAGES = 20        # fewer train images than this: no shortcut check (CV would be noise)


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

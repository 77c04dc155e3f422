"""How far a CV score can be trusted: its 95 % bootstrap interval, and whether one run's lead is noise.

The interval is a percentile bootstrap over the *independent units* the CV rests on: the groups the
folds were split by (a plugin's group column, ``--group-duplicates``) when they were grouped, else
the images. Resampling images when copies of one original fill the set would pretend to more
evidence than there is; resampling groups does not. A metric that is the mean of a term per image
(``Metric.per_image``: accuracy, log loss) is resampled in one vectorised step; any other metric is
called once per resample. Everything is seeded: the same predictions give the same interval.

Whether the best run's lead over the second is inside the noise is read from a *paired* bootstrap
when both runs scored the same images (the same resampled units scored by both runs, so what the
two have in common cancels out), else from the overlap of their intervals (cruder: two intervals can
overlap while a paired difference is clear).

Example:
    >>> import numpy as np
    >>> from kaggle_kit.metrics import get_metric
    >>> y = np.array([0, 1] * 50)
    >>> proba = np.eye(2)[np.where(np.arange(100) % 5 == 0, 1 - y, y)]      # 80 % right
    >>> ci = cv_interval(get_metric("accuracy"), y, proba)
    >>> ci.score, ci.low < 0.8 < ci.high, ci.units, ci.unit
    (0.8, True, 100, 'images')
    >>> ci.text() == cv_interval(get_metric("accuracy"), y, proba).text()      # seeded
    True
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from kaggle_kit.errors import KitError
from kaggle_kit.metrics import Metric

__all__ = ["RESAMPLES", "CVInterval", "Lead", "OutOfFold", "cv_interval", "compare", "load_oof", "lead_note"]

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
_CHUNK = 4_000_000          # resampled entries per vectorised step (bounds memory for large sets)


@dataclass(frozen=True, kw_only=True)
class CVInterval:
    """A CV score with its 95 % bootstrap interval and the number of independent units behind it."""

    score: float
    low: float
    high: float
    units: int                        # independent units resampled: groups or images
    unit: str                         # "groups" (grouped folds) or "images"
    resamples: int = RESAMPLES
    seed: int = SEED

    @property
    def grouped(self) -> bool:
        return self.unit == "groups"

    def text(self, digits: int = 4) -> str:
        """``0.9120 [0.8970, 0.9250] n=5000 images``."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.score)} [{f.format(self.low)}, {f.format(self.high)}] n={self.units} {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CVInterval":
        return cls(**{k: data[k] for k in ("score", "low", "high", "units", "unit", "resamples", "seed") if k in data})


@dataclass(frozen=True, kw_only=True)
class OutOfFold:
    """A run's ``oof.csv`` as arrays: one row per training image, probabilities in class order."""

    ids: tuple[str, ...]
    y_true: np.ndarray                  # class indices
    proba: np.ndarray                   # (n, n_classes)
    folds: np.ndarray | None = None
    groups: tuple[str, ...] | None = None

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


@dataclass(frozen=True, kw_only=True)
class Lead:
    """How much better the best run scored than the second, with a 95 % interval of that lead."""

    best: str
    second: str
    lead: float                       # always >= 0: in the better direction of the metric
    low: float                        # paired: the 95 % interval of the lead; overlap: the gap between
    high: float                       # the two intervals (<= 0 when they overlap) and the lead
    method: str                       # "paired" (same images, bootstrap of the difference) or "overlap"
    units: int = 0
    unit: str = ""

    @property
    def inside_noise(self) -> bool:
        return self.low <= 0.0

    def text(self, digits: int = 4) -> str:
        f = f"{{:.{digits}f}}"
        if self.method == "paired":
            how = (f"lead {f.format(self.lead)}, 95% [{f.format(self.low)}, {f.format(self.high)}] "
                   f"by paired bootstrap over {self.units} {self.unit}")
        else:
            how = (f"lead {f.format(self.lead)}; their 95% intervals "
                   f"{'overlap' if self.inside_noise else 'do not overlap'}")
        if self.inside_noise:
            return f"{self.best} leads {self.second} inside the noise ({how}): treat them as tied"
        return f"{self.best} leads {self.second} beyond the noise ({how})"


# -- the bootstrap -----------------------------------------------------------------------------------
def _units(n: int, groups: Sequence[str] | None) -> tuple[np.ndarray, int]:
    """Each image's unit index, and the number of units."""
    if groups is None:
        return np.arange(n), n
    if len(groups) != n:
        raise KitError(f"{len(groups)} group labels for {n} out-of-fold predictions")
    _, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    return codes.ravel(), int(codes.max()) + 1 if n else 0


def _draws(units: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """``resamples`` rows of ``units`` unit indices drawn with replacement, in chunks of rows that
    bound memory; the same arguments always give the same rows."""
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK // max(units, 1))
    for start in range(0, resamples, step):
        yield rng.integers(0, units, size=(min(step, resamples - start), units), dtype=np.int64)


def _resampled_sums(stats: Sequence[np.ndarray], codes: np.ndarray, units: int, resamples: int,
                    seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each of ``stats`` (per-image, ``(n, k)``) summed over each resample of units, a unit drawn twice
    counted twice, and the image count of each resample. All ``stats`` see the same resamples."""
    per_unit = [np.stack([np.bincount(codes, weights=col, minlength=units) for col in s.T], axis=1) for s in stats]
    sizes = np.bincount(codes, minlength=units).astype(np.float64)
    sums: list[list[np.ndarray]] = [[] for _ in stats]
    counts = []
    for d in _draws(units, resamples, seed):
        rows = len(d)
        times = np.bincount((d + units * np.arange(rows)[:, None]).ravel(), minlength=rows * units)
        times = times.reshape(rows, units).astype(np.float64)
        for out, u in zip(sums, per_unit):
            out.append(times @ u)
        counts.append(times @ sizes)
    return [np.concatenate(s) for s in sums], np.concatenate(counts)


def _per_image(metric: Metric, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    stats = np.asarray(metric.per_image(y, proba), dtype=np.float64)
    return stats[:, None] if stats.ndim == 1 else stats


def _resampled_scores(metric: Metric, runs: Sequence[tuple[np.ndarray, np.ndarray]], codes: np.ndarray,
                      units: int, resamples: int, seed: int) -> list[np.ndarray]:
    """The metric on each resample, for each ``(y, proba)`` of ``runs`` over the same resamples:
    vectorised for a metric with additive per-image statistics, else one call each."""
    if metric.per_image is not None:
        sums, counts = _resampled_sums([_per_image(metric, y, p) for y, p in runs], codes, units, resamples, seed)
        return [metric.score_sums(s, counts) for s in sums]
    order = np.argsort(codes, kind="stable")                      # images unit by unit
    sizes = np.bincount(codes, minlength=units)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    scores: list[list[float]] = [[] for _ in runs]
    for chunk in _draws(units, resamples, seed):
        for d in chunk:
            m = sizes[d]
            rows = order[np.repeat(starts[d] - np.cumsum(m) + m, m) + np.arange(m.sum())]
            for out, (y, p) in zip(scores, runs):
                out.append(metric(y[rows], p[rows]))
    return [np.asarray(s) for s in scores]


def _interval(boot: np.ndarray, point: float) -> tuple[float, float]:
    """The percentile interval, widened to hold ``point`` (a metric that is not a plain mean, macro F1,
    can put a skewed bootstrap slightly beside it)."""
    low, high = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return round(min(float(low), point), 6), round(max(float(high), point), 6)


def cv_interval(metric: Metric, y: np.ndarray, proba: np.ndarray, groups: Sequence[str] | None = None, *,
                resamples: int = RESAMPLES, seed: int = SEED) -> CVInterval:
    """The metric on the out-of-fold predictions with its 95 % percentile-bootstrap interval, resampling
    ``groups`` (one label per image) when given, else images. The interval always holds the score."""
    y, proba = np.asarray(y, dtype=np.int64), np.asarray(proba, dtype=np.float64)
    if len(y) == 0:
        raise KitError("no out-of-fold predictions to score")
    codes, units = _units(len(y), groups)
    score = metric(y, proba)
    [boot] = _resampled_scores(metric, [(y, proba)], codes, units, resamples, seed)
    low, high = _interval(boot, score)
    return CVInterval(score=round(score, 6), low=low, high=high, units=units,
                      unit="groups" if groups is not None else "images", resamples=resamples, seed=seed)


def compare(metric: Metric, best: OutOfFold, second: OutOfFold, *, names: tuple[str, str] = ("best", "second"),
            resamples: int = RESAMPLES, seed: int = SEED) -> Lead | None:
    """The paired bootstrap of ``best``'s lead over ``second`` on the images both scored; None when
    they did not score the same images. Units: ``best``'s groups, else ``second``'s, else images."""
    if len(best.ids) != len(second.ids) or set(best.ids) != set(second.ids):
        return None
    row = {i: k for k, i in enumerate(second.ids)}
    align = np.array([row[i] for i in best.ids])
    if not np.array_equal(best.y_true, second.y_true[align]):
        return None
    groups = best.groups if best.groups is not None else (
        None if second.groups is None else tuple(second.groups[k] for k in align))
    codes, units = _units(len(best.ids), groups)
    sign = 1.0 if metric.higher_is_better else -1.0
    y, a, b = best.y_true, best.proba, second.proba[align]
    score_a, score_b = _resampled_scores(metric, [(y, a), (y, b)], codes, units, resamples, seed)
    diff = sign * (score_a - score_b)
    lead = sign * (metric(y, a) - metric(y, b))
    low, high = _interval(diff, lead)
    return Lead(best=names[0], second=names[1], lead=round(lead, 6), low=low, high=high, method="paired",
                units=units, unit="groups" if groups is not None else "images")


def _overlap(metric: Metric, best: CVInterval, second: CVInterval, names: tuple[str, str]) -> Lead:
    """The cruder reading when the runs scored different images: do the two intervals overlap?"""
    sign = 1.0 if metric.higher_is_better else -1.0
    lead = sign * (best.score - second.score)
    gap = (best.low - second.high) if metric.higher_is_better else (second.low - best.high)
    return Lead(best=names[0], second=names[1], lead=round(lead, 6), low=round(gap, 6), high=round(lead, 6),
                method="overlap")


def load_oof(path: Path, classes: Sequence[str]) -> OutOfFold | None:
    """``oof.csv`` (id, fold, label, [group,] one probability column per class); None if there is none.
    A malformed file is a one-line ``KitError``. Read with :mod:`csv`, not pandas: ``runs`` stays quick."""
    import csv

    path = Path(path)
    if not path.is_file():
        return None
    index = {c: i for i, c in enumerate(classes)}
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("id", "fold", "label", *classes) if c not in (reader.fieldnames or [])]
            if missing:
                raise KitError(f"{path}: out-of-fold predictions have no column(s) {', '.join(missing)}")
            rows = list(reader)
        unknown = sorted({r["label"] for r in rows} - set(index))
        if unknown:
            raise KitError(f"{path}: label(s) not among the run's classes: {', '.join(unknown[:5])}")
        proba = np.array([[float(r[c]) for c in classes] for r in rows], np.float64).reshape(len(rows), len(classes))
        folds = np.array([int(r["fold"]) for r in rows], np.int64)
    except (OSError, ValueError, csv.Error) as e:
        raise KitError(f"{path}: not a readable out-of-fold CSV ({e})") from None
    groups = tuple(r["group"] for r in rows) if rows and "group" in rows[0] else None
    return OutOfFold(ids=tuple(r["id"] for r in rows), y_true=np.array([index[r["label"]] for r in rows], np.int64),
                     proba=proba, folds=folds, groups=groups)


def _oof_or_none(run: Any) -> OutOfFold | None:
    try:
        return load_oof(run.path / "oof.csv", run.classes)
    except KitError:          # an unreadable oof.csv: compare by the saved intervals instead
        return None


def lead_note(metric: Metric, runs: Sequence[Any]) -> Lead | None:
    """The lead of ``runs[0]`` over ``runs[1]`` (run records, best first): paired where both runs'
    ``oof.csv`` cover the same images, else by their saved intervals; None when it cannot be told."""
    scored = [r for r in runs if r.cv is not None]
    if len(scored) < 2:
        return None
    best, second = scored[0], scored[1]
    names = (best.run_id, second.run_id)
    a, b = (_oof_or_none(r) for r in (best, second))
    lead = compare(metric, a, b, names=names) if a is not None and b is not None else None
    if lead is None and best.cv_interval is not None and second.cv_interval is not None:
        lead = _overlap(metric, best.cv_interval, second.cv_interval, names)
    return lead

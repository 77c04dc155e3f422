"""Competition metrics, registered by name with their facts. Adding one is a single decorated function.

Every metric takes the true class indices and the predicted probabilities (rows = samples,
columns = classes in the competition's class order) and returns a float. Its entry states the
facts the rest of the kit reads (never the name): whether higher is better, whether it scores the
probabilities themselves (then submissions carry calibrated rows that sum to 1, and the report
shows calibration), and a one-line description.

A competition plugin may register its own metric in its file, before ``COMPETITION``; loading the
plugin again (a notebook re-reading the project) replaces that plugin's own entry:

    from kaggle_kit.metrics import register_metric

    @register_metric("balanced_accuracy", higher_is_better=True)
    def balanced_accuracy(y_true, proba):
        "Mean recall over the classes."
        ...

Example:
    >>> import numpy as np
    >>> m = get_metric("accuracy")
    >>> m(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    1.0
    >>> m.better(0.9, 0.8), m.higher_is_better, m.needs_proba, m.direction
    (True, True, False, 'max')
    >>> get_metric("log_loss").needs_proba
    True
    >>> {"accuracy", "f1_macro", "log_loss"} <= set(list_metrics())
    True
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from kaggle_kit.registry import Registry

__all__ = ["Metric", "METRICS", "register_metric", "get_metric", "list_metrics", "clip_and_normalise",
           "accuracy", "log_loss", "f1_macro"]

Direction = Literal["max", "min"]
ScoreFn = Callable[[np.ndarray, np.ndarray], float]
TermsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
SumsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    fn: ScoreFn
    higher_is_better: bool
    needs_proba: bool = False    # scores the probabilities themselves, not only the most likely class
    description: str = ""
    per_image: TermsFn | None = None   # additive per-image statistics, (n,) or (n, k): a fast bootstrap
    from_sums: SumsFn | None = None    # their sums (B, k) and image counts (B,) -> B scores; None: the mean

    def score_sums(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Scores from summed :attr:`per_image` statistics (one row per resample)."""
        if self.from_sums is not None:
            return np.asarray(self.from_sums(sums, counts), dtype=np.float64)
        return sums[:, 0] / counts

    def __call__(self, y_true: np.ndarray, proba: np.ndarray) -> float:
        return float(self.fn(np.asarray(y_true, dtype=np.int64), np.asarray(proba, dtype=np.float64)))

    @property
    def direction(self) -> Direction:
        """``"max"`` or ``"min"``: the form run records and Keras callbacks take."""
        return "max" if self.higher_is_better else "min"

    def better(self, a: float, b: float | None) -> bool:
        """True when score ``a`` beats ``b`` (``None`` is beaten by anything)."""
        if b is None:
            return True
        return a > b if self.higher_is_better else a < b

    @property
    def worst(self) -> float:
        return -np.inf if self.higher_is_better else np.inf

    def best_of(self, scores: list[float]) -> float:
        return max(scores) if self.higher_is_better else min(scores)


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, *, higher_is_better: bool, needs_proba: bool = False,
                    description: str = "", per_image: TermsFn | None = None,
                    from_sums: SumsFn | None = None) -> Callable[[ScoreFn], ScoreFn]:
    """Register ``fn(y_true, proba) -> float`` as metric ``name`` (the description defaults to the
    first line of its docstring). Registering a name again from the same file replaces the entry;
    from another file it is an error naming the first. ``per_image(y_true, proba)`` gives statistics
    per image that add up, ``(n,)`` or ``(n, k)``, and ``from_sums(sums, counts)`` the scores from their
    sums over resampled images (default: the mean of a single term): the CV interval is then computed
    vectorised (:mod:`kaggle_kit.training.cv`); without them the metric is called once per resample."""

    def add(fn: ScoreFn) -> ScoreFn:
        doc = (inspect.getdoc(fn) or "").split("\n", 1)[0]
        entry = Metric(name=name, fn=fn, higher_is_better=higher_is_better, needs_proba=needs_proba,
                       description=description or doc, per_image=per_image, from_sums=from_sums)
        METRICS.add(name, entry, source=getattr(getattr(fn, "__code__", None), "co_filename", None))
        return fn

    return add


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


def list_metrics() -> list[str]:
    """The registered metric names (plugins' included once they are loaded)."""
    return METRICS.names()


def clip_and_normalise(proba: np.ndarray, eps: float = 1e-15) -> np.ndarray:
    """Kaggle's log-loss treatment: clip to [eps, 1 - eps], then rescale each row to sum 1."""
    p = np.clip(np.asarray(proba, dtype=np.float64), eps, 1 - eps)
    return p / p.sum(axis=1, keepdims=True)


def _hits(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    return (np.asarray(proba).argmax(axis=1) == np.asarray(y_true)).astype(np.float64)


def _log_losses(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    y_true = np.asarray(y_true, dtype=np.int64)
    return -np.log(clip_and_normalise(proba)[np.arange(len(y_true)), y_true])


@register_metric("accuracy", higher_is_better=True, per_image=_hits)
def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Fraction of images whose most likely class is the true one."""
    return float(np.mean(_hits(y_true, proba)))


@register_metric("log_loss", higher_is_better=False, needs_proba=True, per_image=_log_losses)
def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class log loss of the probabilities, clipped and renormalised as Kaggle does."""
    return float(np.mean(_log_losses(y_true, proba)))


def _f1_counts(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per image, one-hot over the classes: a true positive, the predicted class, the true class."""
    n_classes = np.asarray(proba).shape[1]
    eye = np.eye(n_classes)
    pred, true = eye[np.asarray(proba).argmax(axis=1)], eye[np.asarray(y_true, dtype=np.int64)]
    return np.hstack([pred * true, pred, true])


def _f1_from_counts(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    tp, pred, true = np.split(np.asarray(sums, dtype=np.float64), 3, axis=1)
    present = (pred + true) > 0                  # the classes that occur in the truth or the predictions
    f1 = np.divide(2 * tp, pred + true, out=np.zeros_like(tp), where=present)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


@register_metric("f1_macro", higher_is_better=True, per_image=_f1_counts, from_sums=_f1_from_counts)
def f1_macro(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro F1 over the classes that occur in the truth or the predictions (scikit-learn's rule)."""
    counts = _f1_counts(y_true, proba)
    return float(_f1_from_counts(counts.sum(axis=0, keepdims=True), np.array([len(counts)]))[0])

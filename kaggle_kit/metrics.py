"""Competition metrics, registered by name. Adding one is a single decorated function.

Every metric takes the true class indices and the predicted probabilities (rows = samples,
columns = classes in the competition's class order) and returns a float.

Example:
    >>> import numpy as np
    >>> m = get_metric("accuracy")
    >>> m(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    1.0
    >>> m.better(0.9, 0.8)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from kaggle_kit.registry import Registry

Direction = Literal["max", "min"]
ScoreFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    direction: Direction
    fn: ScoreFn

    def __call__(self, y_true: np.ndarray, proba: np.ndarray) -> float:
        return float(self.fn(np.asarray(y_true, dtype=np.int64), np.asarray(proba, dtype=np.float64)))

    def better(self, a: float, b: float | None) -> bool:
        """True when score ``a`` beats ``b`` (``None`` is beaten by anything)."""
        if b is None:
            return True
        return a > b if self.direction == "max" else a < b

    @property
    def worst(self) -> float:
        return -np.inf if self.direction == "max" else np.inf

    def best_of(self, scores: list[float]) -> float:
        return max(scores) if self.direction == "max" else min(scores)


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, direction: Direction) -> Callable[[ScoreFn], ScoreFn]:
    """Register ``fn(y_true, proba) -> float`` as metric ``name``."""

    def add(fn: ScoreFn) -> ScoreFn:
        METRICS.add(name, Metric(name=name, direction=direction, fn=fn))
        return fn

    return add


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


def clip_and_normalise(proba: np.ndarray, eps: float = 1e-15) -> np.ndarray:
    """Kaggle's log-loss treatment: clip to [eps, 1 - eps], then rescale each row to sum 1."""
    p = np.clip(np.asarray(proba, dtype=np.float64), eps, 1 - eps)
    return p / p.sum(axis=1, keepdims=True)


@metric("accuracy", "max")
def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(axis=1) == y_true))


@metric("log_loss", "min")
def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    p = clip_and_normalise(proba)
    return float(-np.mean(np.log(p[np.arange(len(y_true)), y_true])))


@metric("f1_macro", "max")
def f1_macro(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro F1 over the classes that occur in the truth or the predictions (scikit-learn's rule)."""
    pred = proba.argmax(axis=1)
    labels = np.union1d(y_true, pred)
    f1s = []
    for c in labels:
        tp = np.sum((pred == c) & (y_true == c))
        fp = np.sum((pred == c) & (y_true != c))
        fn = np.sum((pred != c) & (y_true == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))

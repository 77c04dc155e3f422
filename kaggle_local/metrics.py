"""The evaluation metrics the local server scores with, written as Kaggle describes them.

Every metric takes the true class index of each row and the submitted probabilities (one row per
solution row, one column per class; a label submission is one-hot) and returns a float.
Log loss follows Kaggle's evaluation pages: each row is divided by its sum, then every value is
clipped to ``[1e-15, 1 - 1e-15]``; so rows need not sum to 1.

Example:
    >>> import numpy as np
    >>> truth = np.array([0, 1])
    >>> METRICS["accuracy"](truth, np.array([[0.9, 0.1], [0.6, 0.4]]))
    0.5
    >>> round(METRICS["log_loss"](truth, np.array([[2.0, 2.0], [1.0, 3.0]])), 6)   # rows rescaled
    0.490415
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

__all__ = ["EPS", "METRICS", "ServerMetric", "accuracy", "f1_macro", "log_loss"]

EPS = 1e-15
ScoreFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True, kw_only=True)
class ServerMetric:
    name: str
    direction: Literal["max", "min"]    # which way the leaderboard sorts
    fn: ScoreFn

    def __call__(self, truth: np.ndarray, proba: np.ndarray) -> float:
        return float(self.fn(np.asarray(truth, dtype=np.int64), np.asarray(proba, dtype=np.float64)))


def accuracy(truth: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(axis=1) == truth))


def log_loss(truth: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class log loss; rows are rescaled to sum 1, then clipped (a row summing to 0 is refused
    before scoring, see :mod:`kaggle_local.submission`)."""
    p = np.clip(proba / proba.sum(axis=1, keepdims=True), EPS, 1 - EPS)
    return float(-np.mean(np.log(p[np.arange(len(truth)), truth])))


def f1_macro(truth: np.ndarray, proba: np.ndarray) -> float:
    """The mean F1 over every class that is in the truth or predicted at least once."""
    pred = proba.argmax(axis=1)
    scores = []
    for c in sorted(set(truth.tolist()) | set(pred.tolist())):
        hit = int(np.sum((pred == c) & (truth == c)))
        predicted, actual = int(np.sum(pred == c)), int(np.sum(truth == c))
        scores.append(2 * hit / (predicted + actual) if hit else 0.0)
    return float(np.mean(scores))


METRICS: dict[str, ServerMetric] = {m.name: m for m in (
    ServerMetric(name="accuracy", direction="max", fn=accuracy),
    ServerMetric(name="log_loss", direction="min", fn=log_loss),
    ServerMetric(name="f1_macro", direction="max", fn=f1_macro),
)}

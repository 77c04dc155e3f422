"""Calibrated probabilities for probability metrics: a temperature and a probability floor fitted on
out-of-fold predictions, and the expected calibration error (ECE) the runs table and report show.

A model fine-tuned on few images is often confidently wrong on images unlike its training set, and
the log loss punishes one confident mistake without bound. Two corrections, applied to the *final*
test probabilities (after the fold ensemble, TTA and any blend) when the metric scores probabilities:

- **temperature** ``T``: ``p -> softmax(log p / T)``; ``T > 1`` softens, ``T < 1`` sharpens. Fitted
  by minimising the log loss of the run's out-of-fold predictions (the folds are the run's own,
  grouped where the audit found groups, so the fit sees originals its model did not).
- **floor** ``eps``: clip to ``[eps, 1]`` and renormalise, ``eps`` from :data:`FLOORS` (0: none).

Both are fitted on the other folds and scored on each fold in turn (nested CV), and used only when
that nested log loss beats the raw OOF's: :func:`fit_calibration` says what it found either way.
Out-of-fold rows come from single fold models, test rows from their mean (softer), so a temperature
fitted on OOF can over-soften the test set: bench/RESULTS.md measures it.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(0, 2, (4000, 3)); true = softmax_rows(logits)
    >>> y = (rng.random((4000, 1)) > true.cumsum(axis=1)).sum(axis=1)      # drawn from the true probabilities
    >>> sharp = softmax_rows(logits * 3)                 # over-confident by a factor of 3
    >>> round(fit_temperature(y, sharp), 1)
    3.0
    >>> calibration_bins(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]), 2)[2].tolist()
    [0, 2]
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from kaggle_kit.metrics import log_loss

__all__ = ["Calibration", "FLOORS", "ECE_BINS", "softmax_rows", "with_temperature", "with_floor", "fit_temperature",
           "fit_calibration", "calibration_bins", "ece", "IDENTITY"]

FLOORS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2)
ECE_BINS = 15
_TINY = 1e-12
_PARTS = 5                     # nested-CV parts for a holdout run's single fold


def softmax_rows(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def with_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the probabilities a softmax would give with its logits divided by T."""
    if temperature == 1.0:
        return np.asarray(proba, dtype=np.float64)
    return softmax_rows(np.log(np.clip(proba, _TINY, 1.0)) / temperature)


def with_floor(proba: np.ndarray, eps: float) -> np.ndarray:
    """Clip to ``[eps, 1]`` and renormalise (``eps`` 0: unchanged)."""
    p = np.asarray(proba, dtype=np.float64)
    if eps <= 0:
        return p
    p = np.clip(p, eps, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def fit_temperature(y: np.ndarray, proba: np.ndarray) -> float:
    """The temperature minimising the log loss of ``proba`` (searched over ``log T`` in [-3, 3])."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=np.int64)
    logp = np.log(np.clip(proba, _TINY, 1.0))
    rows = np.arange(len(y))

    def loss(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, y]))

    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """What :func:`fit_calibration` found: the temperature and floor (fitted on all OOF rows), the log
    loss and ECE before and after (after: nested, fitted without the rows scored), and whether it is
    ``used`` (only where the nested log loss beat the raw one)."""

    temperature: float = 1.0
    floor: float = 0.0
    used: bool = False
    raw_log_loss: float = float("nan")
    nested_log_loss: float = float("nan")
    raw_ece: float = float("nan")
    nested_ece: float = float("nan")

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """The calibrated probabilities (unchanged when not ``used``)."""
        if not self.used:
            return np.asarray(proba, dtype=np.float64)
        return with_floor(with_temperature(proba, self.temperature), self.floor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


IDENTITY = Calibration()


def _fit(y: np.ndarray, proba: np.ndarray, floors: Sequence[float]) -> tuple[float, float]:
    t = fit_temperature(y, proba)
    tempered = with_temperature(proba, t)
    eps = min(floors, key=lambda e: (log_loss(y, with_floor(tempered, e)), e))
    return t, eps


def _parts(folds: np.ndarray | None, n: int) -> np.ndarray:
    if folds is not None and len(np.unique(folds)) >= 2:
        return np.asarray(folds)
    return np.arange(n) % _PARTS


def fit_calibration(y: np.ndarray, proba: np.ndarray, folds: np.ndarray | None = None, *,
                    floors: Sequence[float] = FLOORS) -> Calibration:
    """Fit a temperature then a floor (the one with the lowest log loss after it) on all rows, and
    score the same fit done on the other folds on each fold (nested CV) to decide whether to use it."""
    y, proba = np.asarray(y, dtype=np.int64), np.asarray(proba, dtype=np.float64)
    parts = _parts(folds, len(y))
    nested = np.zeros_like(proba)
    for k in np.unique(parts):
        inside = parts == k
        t, eps = _fit(y[~inside], proba[~inside], floors)
        nested[inside] = with_floor(with_temperature(proba[inside], t), eps)
    t, eps = _fit(y, proba, floors)
    raw, after = log_loss(y, proba), log_loss(y, nested)
    return Calibration(temperature=round(t, 4), floor=eps, used=bool(after < raw), raw_log_loss=round(raw, 6),
                       nested_log_loss=round(after, 6), raw_ece=round(ece(y, proba), 6),
                       nested_ece=round(ece(y, nested), 6))


def calibration_bins(y_true: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS):
    """Top-class confidence against accuracy in ``bins`` equal-width bins.

    Returns (mean confidence, accuracy, count) per bin (NaN where empty) and the expected
    calibration error (the count-weighted mean gap).

    Example:
        >>> conf, acc, count, err = calibration_bins(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]), 2)
        >>> count.tolist(), round(err, 2)
        ([0, 2], 0.35)
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, confidence, bins) / count
        accuracy = np.bincount(which, correct, bins) / count
    gaps = np.where(count > 0, np.abs(np.nan_to_num(mean_conf) - np.nan_to_num(accuracy)), 0.0)
    return mean_conf, accuracy, count, float((gaps * count).sum() / max(count.sum(), 1))


def ece(y_true: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> float:
    """The expected calibration error in ``bins`` equal-width bins of the top-class probability."""
    return calibration_bins(y_true, proba, bins)[3]

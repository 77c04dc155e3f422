"""Blending runs: ensemble weights fitted on the runs' out-of-fold predictions, scored by nested CV.

The members must have scored the same training images in the same folds (their ``oof.csv`` holds
the same ids with the same fold each): only then is a weighted mean of their OOF rows an honest
out-of-fold prediction. A blend's probabilities are ``combine(members, weights, space)``: in
``linear`` space the weighted arithmetic mean, in ``log`` space the weighted geometric mean
(renormalised), which punishes a member's confident mistake less than it rewards agreement.

Weights are non-negative and sum to 1, fitted by one of :data:`METHODS`:

- ``equal``: 1/m each (nothing fitted, so its CV is honest as it stands);
- ``scipy``: L-BFGS on the log loss of the blend, weights as a softmax of free parameters (the
  metric itself when it is the log loss, a smooth proxy for accuracy-like metrics);
- ``greedy``: Caruana et al.'s forward selection with replacement on the metric itself (ties
  broken by the log loss), the best prefix of 30 steps kept.

The CV of a fitted blend is *nested*: for each fold k the weights are fitted on the other folds'
OOF rows and the blend scored on fold k's rows, so no weight ever sees the rows it is scored on
(a holdout run, one fold only, is split into 5 parts for this). ``fit_blend`` scores every method in
every space this way, keeps the best and fits its final weights on all the OOF rows.

Example:
    >>> import numpy as np
    >>> from kaggle_kit.metrics import get_metric
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400); folds = np.arange(400) % 4
    >>> good = np.eye(2)[y] * 0.6 + 0.2; noise = rng.dirichlet([1, 1], 400)
    >>> fit = fit_blend(get_metric("log_loss"), y, [good, noise], folds)
    >>> fit.weights[0] > 0.8, round(sum(fit.weights), 6)
    (True, 1.0)
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kaggle_kit.errors import KitError
from kaggle_kit.metrics import Metric, clip_and_normalise, log_loss
from kaggle_kit.training.cv import CVInterval, OutOfFold, cv_interval

__all__ = ["METHODS", "SPACES", "Candidate", "BlendFit", "combine", "fit_weights", "nested_oof", "fit_blend",
           "align_oof", "folds_fingerprint", "EPS"]

METHODS = ("equal", "scipy", "greedy")
SPACES = ("linear", "log")
EPS = 1e-7                     # probabilities floored here before a log (oof.csv rounds them to 1e-6)
GREEDY_STEPS = 30
HOLDOUT_PARTS = 5


def combine(probas: Sequence[np.ndarray], weights: Sequence[float], space: str = "linear") -> np.ndarray:
    """The weighted mean of the members' probabilities (rows sum to 1): arithmetic in ``linear``
    space, geometric in ``log`` space."""
    w = np.asarray(weights, dtype=np.float64)
    if space == "linear":
        return np.tensordot(w, np.stack(probas), axes=1)
    if space != "log":
        raise KitError(f"blend space must be one of {', '.join(SPACES)}, not {space!r}")
    logp = np.tensordot(w, np.log(np.clip(np.stack(probas), EPS, 1.0)), axes=1)
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def _key(metric: Metric, y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Smaller is better: the metric in its direction, then the log loss (breaks accuracy's ties)."""
    score = metric(y, p)
    return (-score if metric.higher_is_better else score, log_loss(y, p))


def _scipy_weights(y: np.ndarray, probas: Sequence[np.ndarray], space: str) -> np.ndarray:
    from scipy.optimize import minimize

    m = len(probas)
    rows = np.arange(len(y))

    def loss(z: np.ndarray) -> float:
        w = np.exp(z - z.max())
        w /= w.sum()
        p = clip_and_normalise(combine(probas, w, space))
        return float(-np.mean(np.log(p[rows, y])))

    res = minimize(loss, np.zeros(m), method="L-BFGS-B", options={"maxiter": 200})
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


def _greedy_weights(metric: Metric, y: np.ndarray, probas: Sequence[np.ndarray], space: str) -> np.ndarray:
    m = len(probas)
    counts = np.zeros(m)
    best_counts, best_key = None, None
    for _ in range(GREEDY_STEPS):
        trials = []
        for j in range(m):
            c = counts.copy()
            c[j] += 1
            trials.append((_key(metric, y, combine(probas, c / c.sum(), space)), j))
        key, j = min(trials)
        counts[j] += 1
        if best_key is None or key < best_key:
            best_key, best_counts = key, counts.copy()
    return best_counts / best_counts.sum()


def fit_weights(metric: Metric, y: np.ndarray, probas: Sequence[np.ndarray], method: str,
                space: str = "linear") -> np.ndarray:
    """Non-negative weights summing to 1 for ``probas`` (one array per member) by ``method``."""
    if method == "equal":
        return np.full(len(probas), 1.0 / len(probas))
    if method == "scipy":
        return _scipy_weights(np.asarray(y), probas, space)
    if method == "greedy":
        return _greedy_weights(metric, np.asarray(y), probas, space)
    raise KitError(f"blend method must be one of {', '.join(METHODS)}, not {method!r}")


def _outer_folds(folds: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """The folds of the nested CV: the runs' own, or 5 parts of a holdout's images (by id hash)."""
    if len(np.unique(folds)) >= 2:
        return folds
    return np.array([int(hashlib.sha1(i.encode()).hexdigest()[:8], 16) % HOLDOUT_PARTS for i in ids])


def nested_oof(metric: Metric, y: np.ndarray, probas: Sequence[np.ndarray], folds: np.ndarray, method: str,
               space: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The blend's out-of-fold rows with each fold's weights fitted on the *other* folds' rows only;
    also each fold's weights (fold order)."""
    out = np.zeros_like(probas[0], dtype=np.float64)
    per_fold = []
    for k in np.unique(folds):
        inside = folds == k
        w = fit_weights(metric, y[~inside], [p[~inside] for p in probas], method, space)
        out[inside] = combine([p[inside] for p in probas], w, space)
        per_fold.append(w)
    return out, per_fold


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One way to blend and its nested CV (the weights fitted inside the folds)."""

    method: str
    space: str
    cv: CVInterval

    @property
    def name(self) -> str:
        return f"{self.method}/{self.space}"


@dataclass(frozen=True, kw_only=True)
class BlendFit:
    """The chosen way to blend, its weights fitted on all OOF rows, its nested OOF and every candidate."""

    method: str
    space: str
    weights: tuple[float, ...]
    cv: CVInterval                     # nested CV of the chosen candidate
    oof: np.ndarray                    # the nested out-of-fold blend, rows as given
    candidates: tuple[Candidate, ...]
    fold_weights: tuple[tuple[float, ...], ...]


def fit_blend(metric: Metric, y: np.ndarray, probas: Sequence[np.ndarray], folds: np.ndarray, *,
              ids: Sequence[str] | None = None, groups: Sequence[str] | None = None,
              methods: Sequence[str] = METHODS, spaces: Sequence[str] = SPACES) -> BlendFit:
    """Score each method in each space by nested CV, keep the best (ties: the simpler, in
    :data:`METHODS` order) and fit its weights on all rows. ``groups``: the bootstrap's units."""
    y = np.asarray(y, dtype=np.int64)
    outer = _outer_folds(np.asarray(folds), ids if ids is not None else [str(i) for i in range(len(y))])
    sign = 1.0 if metric.higher_is_better else -1.0
    scored = []
    for method in methods:
        for space in spaces:
            oof, per_fold = nested_oof(metric, y, probas, outer, method, space)
            cand = Candidate(method=method, space=space, cv=cv_interval(metric, y, oof, groups))
            scored.append((cand, oof, per_fold))
    best, oof, per_fold = min(scored, key=lambda s: -sign * s[0].cv.score)       # first of equals wins
    weights = fit_weights(metric, y, probas, best.method, best.space)
    return BlendFit(method=best.method, space=best.space, weights=tuple(round(float(w), 6) for w in weights),
                    cv=best.cv, oof=oof, candidates=tuple(s[0] for s in scored),
                    fold_weights=tuple(tuple(round(float(v), 6) for v in w) for w in per_fold))


def folds_fingerprint(oof: OutOfFold) -> str:
    """Which image was in which fold: equal for runs that share their folds."""
    text = "\n".join(f"{i}:{f}" for i, f in sorted(zip(oof.ids, oof.folds.tolist())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def align_oof(names: Sequence[str], oofs: Sequence[OutOfFold]) -> list[OutOfFold]:
    """The members' OOF in the first member's row order; a :class:`KitError` naming the run whose
    images, labels or folds differ from the first's (then they cannot be blended honestly)."""
    first = oofs[0]
    fold_of = dict(zip(first.ids, first.folds.tolist()))
    out = [first]
    for name, oof in zip(names[1:], oofs[1:]):
        row = {i: k for k, i in enumerate(oof.ids)}
        if row.keys() != fold_of.keys():
            extra, missing = len(row.keys() - fold_of.keys()), len(fold_of.keys() - row.keys())
            raise KitError(f"{name} scored other images than {names[0]} ({missing} missing, {extra} extra): "
                           f"runs blend only when they share their folds (same --folds/--holdout, --seed, "
                           f"--limit and grouping)")
        take = np.array([row[i] for i in first.ids])
        moved = int(np.sum(oof.folds[take] != first.folds))
        if moved:
            raise KitError(f"{name} put {moved} image(s) in other folds than {names[0]}: runs blend only when "
                           f"they share their folds (same --folds/--holdout, --seed and grouping)")
        if not np.array_equal(oof.y_true[take], first.y_true):
            raise KitError(f"{name} has other labels than {names[0]} for the same images: not the same training data")
        out.append(OutOfFold(ids=first.ids, y_true=first.y_true, proba=oof.proba[take], folds=first.folds,
                             groups=first.groups))
    return out

"""Validation splits: stratified k-fold, stratified holdout, or grouped variants, seeded.

The same seed and labels always give the same splits, so a resumed run trains the same folds.

Example:
    >>> import numpy as np
    >>> y = np.array([0] * 6 + [1] * 4)
    >>> splits = make_splits(y, folds=2, seed=0)
    >>> [len(val) for _, val in splits], sorted(np.concatenate([v for _, v in splits]).tolist()) == list(range(10))
    ([5, 5], True)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kaggle_kit.errors import KitError

__all__ = ["make_splits"]

Split = tuple[np.ndarray, np.ndarray]  # (train indices, validation indices)


def make_splits(labels: np.ndarray, *, folds: int = 5, holdout: float | None = None, seed: int = 42,
                groups: Sequence[str] | None = None) -> list[Split]:
    """Stratified k-fold (or one stratified holdout split); with ``groups``, no group straddles a split."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

    labels = np.asarray(labels)
    min_count = int(np.bincount(labels).min(initial=len(labels)) if len(labels) else 0)
    if holdout is not None:
        if not 0 < holdout < 1:
            raise KitError(f"--holdout must be a fraction between 0 and 1, got {holdout}")
        if groups is not None:
            k = max(2, round(1 / holdout))
            train, val = next(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
                              .split(np.zeros(len(labels)), labels, groups))
            return [(train, val)]
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
        return [tuple(next(splitter.split(np.zeros(len(labels)), labels)))]
    if folds < 2:
        raise KitError(f"--folds must be at least 2 (or use --holdout), got {folds}")
    if min_count < folds:
        raise KitError(f"the smallest class has {min_count} image(s), fewer than --folds {folds}")
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(len(labels)), labels, groups)]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(len(labels)), labels)]

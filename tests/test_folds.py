"""Validation splits: stratified, complete, seeded, grouped, and refused when a class is too small."""
from __future__ import annotations

import numpy as np
import pytest

from kaggle_kit.errors import KitError
from kaggle_kit.training.folds import make_splits

LABELS = np.array([0] * 60 + [1] * 30 + [2] * 10)
RNG = np.random.default_rng(0)
SHUFFLED = RNG.permutation(LABELS)


def as_sets(splits) -> list[tuple[frozenset, frozenset]]:
    return [(frozenset(tr.tolist()), frozenset(va.tolist())) for tr, va in splits]


def test_k_fold_keeps_class_proportions_and_validates_every_index_once() -> None:
    splits = make_splits(SHUFFLED, folds=5, seed=7)
    assert len(splits) == 5
    validated = np.concatenate([va for _, va in splits])
    assert sorted(validated.tolist()) == list(range(len(SHUFFLED)))      # each index exactly once
    for tr, va in splits:
        assert np.bincount(SHUFFLED[va], minlength=3).tolist() == [12, 6, 2]
        assert set(tr.tolist()).isdisjoint(va.tolist())
        assert len(tr) + len(va) == len(SHUFFLED)


def test_same_seed_same_folds_other_seed_other_folds() -> None:
    a = as_sets(make_splits(SHUFFLED, folds=4, seed=1))
    assert a == as_sets(make_splits(SHUFFLED, folds=4, seed=1))
    assert a != as_sets(make_splits(SHUFFLED, folds=4, seed=2))


def test_holdout_fraction_and_proportions() -> None:
    splits = make_splits(SHUFFLED, holdout=0.2, seed=0)
    assert len(splits) == 1
    tr, va = splits[0]
    assert len(va) == 20 and len(tr) == 80
    assert np.bincount(SHUFFLED[va], minlength=3).tolist() == [12, 6, 2]
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert as_sets(splits) == as_sets(make_splits(SHUFFLED, holdout=0.2, seed=0))
    assert as_sets(splits) != as_sets(make_splits(SHUFFLED, holdout=0.2, seed=1))


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.1])
def test_holdout_outside_zero_one_is_refused(bad: float) -> None:
    with pytest.raises(KitError, match="--holdout"):
        make_splits(LABELS, holdout=bad)


def grouped() -> tuple[np.ndarray, list[str]]:
    """40 groups of 3 near-duplicates; a group shares its label."""
    group_labels = np.array([0] * 24 + [1] * 16)
    labels = np.repeat(group_labels, 3)
    groups = [f"g{i}" for i in range(40) for _ in range(3)]
    order = np.random.default_rng(1).permutation(len(labels))
    return labels[order], [groups[i] for i in order]


def test_groups_never_straddle_folds() -> None:
    labels, groups = grouped()
    splits = make_splits(labels, folds=4, seed=3, groups=groups)
    assert sorted(np.concatenate([va for _, va in splits]).tolist()) == list(range(len(labels)))
    for tr, va in splits:
        assert {groups[i] for i in tr}.isdisjoint({groups[i] for i in va})
        assert set(np.unique(labels[va]).tolist()) == {0, 1}


def test_groups_never_straddle_the_holdout() -> None:
    labels, groups = grouped()
    [(tr, va)] = make_splits(labels, holdout=0.25, seed=3, groups=groups)
    assert {groups[i] for i in tr}.isdisjoint({groups[i] for i in va})
    assert len(tr) + len(va) == len(labels)
    assert 0.15 <= len(va) / len(labels) <= 0.35


def test_too_few_images_in_a_class() -> None:
    labels = np.array([0] * 20 + [1] * 3)
    with pytest.raises(KitError) as e:
        make_splits(labels, folds=5)
    assert str(e.value) == "the smallest class has 3 image(s), fewer than --folds 5"
    assert len(make_splits(labels, folds=3)) == 3


def test_fewer_than_two_folds_is_refused() -> None:
    with pytest.raises(KitError, match="--folds must be at least 2"):
        make_splits(LABELS, folds=1)

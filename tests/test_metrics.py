"""Metrics against scikit-learn, Kaggle's log-loss clipping, directions and the registry."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from kaggle_kit.metrics import METRICS, clip_and_normalise, get_metric
from kaggle_kit.registry import UnknownName


def random_case(seed: int, n: int = 60, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """True indices and un-normalised positive scores, every class present in the truth."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    return y, rng.uniform(0.05, 1.0, (n, k))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_matches_sklearn(seed: int) -> None:
    y, p = random_case(seed)
    assert get_metric("accuracy")(y, p) == pytest.approx(skm.accuracy_score(y, p.argmax(axis=1)))


def test_accuracy_counts_argmax_hits() -> None:
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    assert get_metric("accuracy")(np.array([0, 1, 1, 0]), proba) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_loss_matches_sklearn_on_normalised_rows(seed: int) -> None:
    y, raw = random_case(seed)
    normalised = raw / raw.sum(axis=1, keepdims=True)
    expected = skm.log_loss(y, normalised, labels=np.arange(raw.shape[1]))
    assert get_metric("log_loss")(y, normalised) == pytest.approx(expected, rel=1e-12)
    # Kaggle rescales rows that do not sum to 1, so the raw scores give the same loss
    assert get_metric("log_loss")(y, raw) == pytest.approx(expected, rel=1e-12)


def test_log_loss_clips_zero_and_one_like_kaggle() -> None:
    eps = 1e-15
    log_loss = get_metric("log_loss")
    # a confident wrong answer: the true class got exactly 0 -> clipped to eps, not infinity
    wrong = log_loss(np.array([0]), np.array([[0.0, 1.0]]))
    assert math.isfinite(wrong)
    assert wrong == pytest.approx(-math.log(eps), rel=1e-9)
    # three classes: clipping makes the row sum 1 + eps, and the row is rescaled
    three = log_loss(np.array([0]), np.array([[0.0, 1.0, 0.0]]))
    assert three == pytest.approx(-math.log(eps / (1 + eps)), rel=1e-9)
    # a confident right answer costs almost nothing, never a negative loss
    right = log_loss(np.array([1]), np.array([[0.0, 1.0]]))
    assert 0.0 <= right < 1e-12


def test_clip_and_normalise_rows_sum_to_one() -> None:
    p = clip_and_normalise(np.array([[0.2, 0.2], [0.0, 1.0], [0.1, 0.3], [1.0, 3.0]]))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0].tolist() == [0.5, 0.5]
    assert p[1, 0] == pytest.approx(1e-15)
    assert p[2].tolist() == pytest.approx([0.25, 0.75])
    assert p[3].tolist() == pytest.approx([0.5, 0.5])  # Kaggle clips first (3 -> 1 - eps), then rescales


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_macro_matches_sklearn(seed: int) -> None:
    y, p = random_case(seed)
    expected = skm.f1_score(y, p.argmax(axis=1), average="macro")
    assert get_metric("f1_macro")(y, p) == pytest.approx(expected)


def test_f1_macro_counts_a_class_never_predicted_as_zero() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 0])  # class 2 is never predicted
    proba = np.eye(3)[pred]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that class 2's precision is undefined
        expected = skm.f1_score(y, pred, average="macro")
    got = get_metric("f1_macro")(y, proba)
    assert got == pytest.approx(expected)
    # by hand: F1(0) = F1(1) = 2*2 / (2*2 + 1 + 0) = 0.8, F1(2) = 0
    assert got == pytest.approx(1.6 / 3)


def test_f1_macro_counts_a_class_predicted_but_absent_from_the_truth() -> None:
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])  # class 2 never occurs in the truth
    expected = skm.f1_score(y, pred, average="macro", zero_division=0)
    assert get_metric("f1_macro")(y, np.eye(3)[pred]) == pytest.approx(expected)


def test_directions_and_comparisons() -> None:
    acc, ll, f1 = get_metric("accuracy"), get_metric("log_loss"), get_metric("f1_macro")
    assert (acc.direction, ll.direction, f1.direction) == ("max", "min", "max")
    assert acc.better(0.9, 0.8) and not acc.better(0.8, 0.9)
    assert ll.better(0.2, 0.3) and not ll.better(0.3, 0.2)
    assert acc.better(0.0, None) and ll.better(99.0, None)
    assert acc.best_of([0.7, 0.9, 0.8]) == 0.9
    assert ll.best_of([0.7, 0.2, 0.8]) == 0.2
    assert acc.worst == -np.inf and ll.worst == np.inf


def test_registry_lists_the_metrics_and_suggests_on_a_typo() -> None:
    assert {"accuracy", "log_loss", "f1_macro"} <= set(METRICS.names())
    with pytest.raises(UnknownName) as e:
        get_metric("acuracy")
    msg = str(e.value)
    assert "did you mean accuracy" in msg
    assert "log_loss" in msg and "\n" not in msg

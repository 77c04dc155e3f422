"""Calibration (kaggle_kit/prediction/calibrate.py): a known temperature recovered, a floor that rescues
confident mistakes, nested CV that leaves calibrated probabilities alone, and the ECE."""
from __future__ import annotations

import numpy as np
import pytest

from kaggle_kit.metrics import log_loss
from kaggle_kit.prediction.calibrate import (ECE_BINS, calibration_bins, ece, fit_calibration, fit_temperature,
                                             softmax_rows, with_floor, with_temperature)


def drawn(n: int = 6000, classes: int = 4, seed: int = 0):
    """Logits, and labels drawn from their softmax: the softmax is calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, classes))
    true = softmax_rows(logits)
    y = (rng.random((n, 1)) > true.cumsum(axis=1)).sum(axis=1)
    return logits, np.minimum(y, classes - 1), np.arange(n) % 5


@pytest.mark.parametrize("t", [0.5, 2.0, 4.0])
def test_the_temperature_a_softmax_was_sharpened_or_softened_by_is_recovered(t):
    logits, y, _ = drawn()
    assert fit_temperature(y, softmax_rows(logits * t)) == pytest.approx(t, rel=0.08)    # T undoes the factor


def test_calibration_of_over_confident_predictions_is_used_and_lowers_the_nested_log_loss():
    logits, y, folds = drawn()
    sharp = softmax_rows(logits * 3)
    cal = fit_calibration(y, sharp, folds)
    assert cal.used and cal.temperature == pytest.approx(3.0, rel=0.1)
    assert cal.nested_log_loss < 0.8 * cal.raw_log_loss and cal.nested_ece < cal.raw_ece / 2
    assert log_loss(y, cal.apply(sharp)) < log_loss(y, sharp)


def test_calibrated_predictions_are_left_alone():
    logits, y, folds = drawn()
    proba = softmax_rows(logits)
    cal = fit_calibration(y, proba, folds)
    assert cal.temperature == pytest.approx(1.0, abs=0.05)
    if not cal.used:
        assert np.array_equal(cal.apply(proba), proba)
    assert abs(cal.nested_log_loss - cal.raw_log_loss) < 0.005


def test_a_floor_rescues_confident_mistakes_that_no_temperature_can():
    rng = np.random.default_rng(1)
    n = 4000
    y = rng.integers(0, 3, n)
    proba = np.full((n, 3), 0.02)
    proba[np.arange(n), y] = 0.96                        # right and sure ...
    wrong = rng.random(n) < 0.03                         # ... except 3 %: certain of another class
    proba[wrong] = np.eye(3)[(y[wrong] + 1) % 3] * (1 - 2e-9) + 1e-9
    cal = fit_calibration(y, proba, np.arange(n) % 5)
    assert cal.used and cal.floor > 0
    assert cal.nested_log_loss < cal.raw_log_loss / 2
    floored = with_floor(proba, cal.floor)
    assert np.allclose(floored.sum(axis=1), 1) and floored.min() >= cal.floor / (1 + 3 * cal.floor)


def test_temperature_one_and_floor_zero_change_nothing():
    p = softmax_rows(np.random.default_rng(2).normal(size=(5, 3)))
    assert np.array_equal(with_temperature(p, 1.0), p) and np.array_equal(with_floor(p, 0.0), p)


def test_ece_is_the_count_weighted_gap_in_fifteen_bins():
    assert ECE_BINS == 15
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.95, 0.05], [0.4, 0.6]])   # 0.95 sure, right 2 of 3
    conf, acc, count, err = calibration_bins(y, proba)
    assert count.sum() == 4 and count[14] == 3 and count[9] == 1
    assert err == pytest.approx((3 * abs(0.95 - 2 / 3) + abs(0.6 - 1.0)) / 4)
    assert ece(y, proba) == err

"""Blend maths (kaggle_kit/training/blend.py): weights, spaces, nested CV that never lets a fold's
weights see that fold, and the checks that refuse runs which do not share their folds."""
from __future__ import annotations

import numpy as np
import pytest

from kaggle_kit.errors import KitError
from kaggle_kit.metrics import get_metric, log_loss
from kaggle_kit.training.blend import align_oof, combine, fit_blend, fit_weights, folds_fingerprint, nested_oof
from kaggle_kit.training.cv import OutOfFold

ACC, LL = get_metric("accuracy"), get_metric("log_loss")


def members(n: int = 600, seed: int = 0):
    """Three members of a 3-class problem: two as good as each other with independent errors, one pure noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    eye = np.eye(3)[y]

    def noisy(signal: float) -> np.ndarray:
        z = signal * eye + rng.normal(0, 1, (n, 3))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return y, [noisy(2.0), noisy(1.8), noisy(0.0)], np.arange(n) % 5


def test_combine_is_a_weighted_mean_in_linear_space_and_geometric_in_log_space():
    a, b = np.array([[0.9, 0.1]]), np.array([[0.5, 0.5]])
    assert np.allclose(combine([a, b], [0.5, 0.5], "linear"), [[0.7, 0.3]])
    g = np.sqrt([0.9 * 0.5, 0.1 * 0.5])
    assert np.allclose(combine([a, b], [0.5, 0.5], "log"), [g / g.sum()])
    with pytest.raises(KitError, match="space must be one of linear, log"):
        combine([a, b], [0.5, 0.5], "harmonic")


@pytest.mark.parametrize("method", ["scipy", "greedy"])
def test_fitted_weights_are_a_convex_combination_that_drops_the_noise_and_beats_each_member(method):
    y, probas, _ = members()
    metric = ACC if method == "greedy" else LL
    w = fit_weights(metric, y, probas, method)
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert w[0] > 0.25 and w[1] > 0.25 and w[2] < 0.15
    blended = combine(probas, w)
    if method == "greedy":
        assert ACC(y, blended) > max(ACC(y, p) for p in probas)
    else:
        assert log_loss(y, blended) < min(log_loss(y, p) for p in probas)


def test_nested_weights_never_see_the_fold_they_score():
    y, probas, folds = members()
    _, before = nested_oof(LL, y, probas, folds, "scipy", "linear")
    changed = [p.copy() for p in probas]
    on_fold_0 = folds == 0
    changed[2][on_fold_0] = np.eye(3)[y[on_fold_0]] * 0.98 + 0.01     # the noise member is perfect on fold 0
    oof, after = nested_oof(LL, y, changed, folds, "scipy", "linear")
    assert np.allclose(after[0], before[0])                           # fold 0's weights did not see it
    assert not np.allclose(after[1], before[1])                       # the other folds' weights did
    assert not np.allclose(fit_weights(LL, y, changed, "scipy"), fit_weights(LL, y, probas, "scipy"))
    assert np.allclose(oof[on_fold_0], combine([p[on_fold_0] for p in changed], before[0]))


def test_fit_blend_reports_every_candidate_and_keeps_the_best_nested_cv():
    y, probas, folds = members()
    fit = fit_blend(LL, y, probas, folds)
    names = {(c.method, c.space) for c in fit.candidates}
    assert names == {(m, s) for m in ("equal", "scipy", "greedy") for s in ("linear", "log")}
    assert fit.cv.score == min(c.cv.score for c in fit.candidates)
    assert fit.cv.score == pytest.approx(log_loss(y, fit.oof), abs=1e-6)    # its CV is its nested OOF's
    assert len(fit.fold_weights) == 5 and sum(fit.weights) == pytest.approx(1.0, abs=1e-5)
    equal = next(c for c in fit.candidates if c.method == "equal" and c.space == "linear")
    assert equal.cv.score == pytest.approx(log_loss(y, combine(probas, [1 / 3] * 3)), abs=1e-6)


def test_a_holdout_run_is_split_into_parts_for_the_nested_cv():
    y, probas, _ = members(200)
    fit = fit_blend(ACC, y, probas, np.zeros(200, int), ids=[f"img{i}" for i in range(200)])
    assert len(fit.fold_weights) == 5


def oof(ids, folds, labels, proba=None) -> OutOfFold:
    n = len(ids)
    proba = np.full((n, 2), 0.5) if proba is None else proba
    return OutOfFold(ids=tuple(ids), y_true=np.array(labels), proba=proba, folds=np.array(folds))


def test_align_reorders_rows_by_id_and_refuses_other_folds_or_images():
    a = oof(["a", "b", "c", "d"], [0, 0, 1, 1], [0, 1, 0, 1])
    b = oof(["d", "c", "b", "a"], [1, 1, 0, 0], [1, 0, 1, 0], proba=np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7],
                                                                             [0.6, 0.4]]))
    aligned = align_oof(["A", "B"], [a, b])
    assert aligned[1].proba[:, 0].tolist() == [0.6, 0.3, 0.8, 0.1]
    assert folds_fingerprint(a) == folds_fingerprint(b)
    moved = oof(["a", "b", "c", "d"], [1, 0, 0, 1], [0, 1, 0, 1])
    assert folds_fingerprint(moved) != folds_fingerprint(a)
    with pytest.raises(KitError, match="B put 2 image\\(s\\) in other folds than A: runs blend only when"):
        align_oof(["A", "B"], [a, moved])
    with pytest.raises(KitError, match="B scored other images than A \\(1 missing, 1 extra\\)"):
        align_oof(["A", "B"], [a, oof(["a", "b", "c", "e"], [0, 0, 1, 1], [0, 1, 0, 1])])
    with pytest.raises(KitError, match="B has other labels than A"):
        align_oof(["A", "B"], [a, oof(["a", "b", "c", "d"], [0, 0, 1, 1], [1, 1, 0, 1])])

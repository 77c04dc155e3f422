"""Metrics against scikit-learn, Kaggle's log-loss clipping, each entry's facts, the registry and a
plugin's own metric."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from kaggle_kit.errors import KitError
from kaggle_kit.metrics import METRICS, clip_and_normalise, get_metric, list_metrics, register_metric
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


def test_each_entry_states_its_facts() -> None:
    facts = {m: (get_metric(m).higher_is_better, get_metric(m).needs_proba) for m in ("accuracy", "log_loss", "f1_macro")}
    assert facts == {"accuracy": (True, False), "log_loss": (False, True), "f1_macro": (True, False)}
    assert all(get_metric(m).description for m in list_metrics())
    assert get_metric("log_loss").description.startswith("Multi-class log loss")


def test_list_metrics_is_the_registry_in_name_order() -> None:
    assert list_metrics() == METRICS.names() == sorted(list_metrics())
    assert {"accuracy", "log_loss", "f1_macro"} <= set(list_metrics())


# -- a plugin's own metric --------------------------------------------------------------------------
PLUGIN_WITH_METRIC = '''
import numpy as np

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.metrics import register_metric


@register_metric("error_rate", higher_is_better=False)
def error_rate(y_true, proba):
    """Fraction of images whose most likely class is wrong."""
    return float(np.mean(proba.argmax(axis=1) != y_true))


COMPETITION = Competition(slug="owls", classes=("barn", "snowy"), metric="error_rate",
                          train=ClassFolders(), submission=Submission())
'''


@pytest.fixture
def restored_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metrics a test registers are gone after it."""
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))
    monkeypatch.setattr(METRICS, "_sources", dict(METRICS._sources))


def test_a_plugin_registers_its_own_metric_and_may_be_loaded_again(tiny_project, restored_metrics) -> None:
    from kaggle_kit.project import Project

    path = tiny_project.root / "competitions" / "owls.py"
    path.write_text(PLUGIN_WITH_METRIC)
    comp = tiny_project.competitions["owls"]
    assert "error_rate" in list_metrics()
    scorer = comp.scorer
    assert (scorer.higher_is_better, scorer.needs_proba, scorer.direction) == (False, False, "min")
    assert scorer.description == "Fraction of images whose most likely class is wrong."
    assert scorer(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])) == pytest.approx(1 / 3)
    assert scorer.better(0.1, 0.2)

    again = Project(tiny_project.root).competitions["owls"]    # a notebook re-reading the project
    assert again.scorer(np.array([0]), np.array([[0.2, 0.8]])) == 1.0
    assert list_metrics().count("error_rate") == 1


def test_a_metric_name_taken_by_another_file_is_refused(tmp_path, restored_metrics) -> None:
    from kaggle_kit.project import load_plugin

    path = tmp_path / "clash.py"
    path.write_text(PLUGIN_WITH_METRIC.replace('"error_rate", higher', '"accuracy", higher'))
    with pytest.raises(KitError) as e:
        load_plugin(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: metric 'accuracy' is registered twice (first in ") and "metrics.py" in msg
    assert "\n" not in msg
    assert get_metric("accuracy").higher_is_better, "the built-in entry is untouched"


def test_register_metric_in_code_and_twice_from_one_file(restored_metrics) -> None:
    def make():
        @register_metric("top_class_share", higher_is_better=True, needs_proba=True, description="share")
        def top_class_share(y_true, proba):
            return float(proba.max(axis=1).mean())
        return top_class_share

    make()
    make()    # the same function's file again: the entry is replaced, not refused
    m = get_metric("top_class_share")
    assert (m.needs_proba, m.description, m(np.array([0]), np.array([[0.25, 0.75]]))) == (True, "share", 0.75)

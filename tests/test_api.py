"""The notebook API (kaggle_kit/api.py, exported by kaggle_kit/__init__.py): the whole loop with only
names from ``kaggle_kit``, against the local Kaggle-compatible server through the official client."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest
from kaggle_helpers import SLUG, TRUTH, project, server, server_root  # noqa: F401  (fixtures)
from rich.console import Console

import kaggle_kit

TINY = {"backbone": "simple_cnn", "weights": "none", "image_size": 16, "head_epochs": 2, "batch_size": 4}


def test_a_notebook_fetches_trains_predicts_submits_and_reads_its_score(server, project, monkeypatch):
    from kaggle_kit import ProgressView, best_run, fetch, list_runs, predict, status, submit, train

    monkeypatch.chdir(project.root)
    fetched = fetch(SLUG)
    assert fetched.action == "downloaded" and (fetched.path / "trainLabels.csv").is_file()

    shown = io.StringIO()
    with ProgressView(Console(file=shown, width=200)) as view:
        run = train(SLUG, folds=2, progress=view, **TINY)
    assert run.status == "complete" and run.n_splits == 2 and len(run.folds) == 2
    assert f"run {run.run_id}" in shown.getvalue() and "fold 2/2 done" in shown.getvalue()
    assert run.config.folds == 2 and run.config.image_size == 16       # the options reached the run
    assert best_run(SLUG).run_id == run.run_id
    assert [r.run_id for r in list_runs(SLUG)] == [run.run_id]

    csv = predict(run, progress=False)
    assert csv.is_file() and len(csv.read_text().splitlines()) == 1 + len(TRUTH)

    sent = submit(run, message="from a notebook")
    assert sent.ref and sent.message == "from a notebook"
    report = status(SLUG, wait=True, timeout=60)
    mine = [row for row in report.submissions if row.info.ref == sent.ref]
    assert mine and mine[0].info.status == "complete" and mine[0].info.public_score is not None
    assert mine[0].run_id == run.run_id                                   # recorded in the run


def test_train_takes_either_a_config_or_options(project, monkeypatch):
    monkeypatch.chdir(project.root)
    with pytest.raises(kaggle_kit.KitError, match="either config= or recipe/options"):
        kaggle_kit.train(SLUG, kaggle_kit.TrainConfig(), folds=3)


def test_a_misspelt_option_fails_before_any_run_starts(project, monkeypatch):
    monkeypatch.chdir(project.root)
    with pytest.raises(kaggle_kit.ConfigError, match="did you mean light"):
        kaggle_kit.train(SLUG, augment="ligth")
    assert not (project.checkpoints / SLUG).exists()


def test_import_kaggle_kit_loads_no_tensorflow_and_exports_what_it_lists():
    code = ("import sys, kaggle_kit; names = [getattr(kaggle_kit, n) for n in kaggle_kit.__all__]; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, len(names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", str(len(kaggle_kit.__all__))]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        kaggle_kit.trian  # noqa: B018

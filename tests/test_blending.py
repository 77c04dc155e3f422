"""Blend records (kaggle_kit/training/blending.py): runs written straight into run folders (the maths
is the point here), blended, listed, picked by --best; mismatched runs refused with one line; the
``blend`` and ``runs`` commands. The end-to-end blend of two trained runs is in test_blend_e2e.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from toy_project import kit_here

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import KitError
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.project import Project
from kaggle_kit.training.blending import blend_runs
from kaggle_kit.training.cv import cv_interval, load_oof
from kaggle_kit.training.runs import BlendRecord, RunRecord, choose_best, list_runs, load_run

CLASSES = ("cat", "dog", "fox")
PLUGIN = '''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders
COMPETITION = Competition(slug="pets", classes=("cat", "dog", "fox"), metric="log_loss", train=ClassFolders(),
                          submission=Submission(labels="proba"))
'''


def pets(metric: str = "log_loss", classes=CLASSES) -> Competition:
    return Competition(slug="pets", classes=classes, metric=metric, train=ClassFolders(), submission=Submission())


def fake_run(project: Project, comp: Competition, signal: float, *, seed: int, folds=None, slug: str | None = None,
             classes=None, n: int = 300) -> RunRecord:
    """A finished run whose ``oof.csv`` holds noisy softmax predictions of fixed labels."""
    classes = list(classes or comp.classes)
    labels = np.arange(n) % len(classes)
    rng = np.random.default_rng(seed)
    z = signal * np.eye(len(classes))[labels] + rng.normal(0, 1, (n, len(classes)))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    folds = np.arange(n) % 3 if folds is None else folds
    rec = RunRecord.create(project, slug or comp.slug, backbone=f"cnn{seed}", classes=classes, metric=comp.metric,
                           direction=comp.scorer.direction, n_splits=3, config={"backbone": "simple_cnn"})
    lines = ["id,fold,label," + ",".join(classes)]
    lines += [f"img{i},{folds[i]},{classes[labels[i]]}," + ",".join(f"{v:.6f}" for v in proba[i]) for i in range(n)]
    (rec.path / "oof.csv").write_text("\n".join(lines) + "\n")
    rec.cv_interval = cv_interval(comp.scorer, labels, proba)
    rec.cv, rec.status = rec.cv_interval.score, "complete"
    rec.save()
    return rec


def test_a_blend_is_saved_listed_loaded_and_taken_by_best(tmp_path: Path):
    project, comp = Project(tmp_path), pets()
    a, b = fake_run(project, comp, 1.6, seed=1), fake_run(project, comp, 1.5, seed=2)
    result = blend_runs(project, comp, top=2)
    blend = result.record
    assert blend.run_id.startswith("blend-") and (blend.path / "blend.json").is_file()
    assert set(blend.members) == {a.run_id, b.run_id} and sum(blend.weights) == pytest.approx(1, abs=1e-5)
    assert blend.cv < min(a.cv, b.cv)                                  # independent errors: the blend helps
    nested = load_oof(blend.path / "oof.csv", blend.classes)            # its nested OOF, as a run's
    assert blend.cv == pytest.approx(comp.scorer(nested.y_true, nested.proba), abs=1e-4)
    again = load_run(project, "pets", blend.run_id)
    assert isinstance(again, BlendRecord) and again.weights == blend.weights and again.space == blend.space
    assert [r.run_id for r in list_runs(project, comp)][0] == blend.run_id
    assert choose_best(project, comp).run.run_id == blend.run_id
    assert {m.run_id for m in again.member_runs()} == {a.run_id, b.run_id}


def test_top_leaves_out_runs_with_other_folds_and_names_them(tmp_path: Path):
    project, comp = Project(tmp_path), pets()
    best = fake_run(project, comp, 2.2, seed=1)
    other = fake_run(project, comp, 1.8, seed=3, folds=(np.arange(300) + 1) % 3)    # second best, other folds
    third = fake_run(project, comp, 1.4, seed=2)
    assert [r.run_id for r in list_runs(project, comp)] == [best.run_id, other.run_id, third.run_id]
    result = blend_runs(project, comp, top=2)
    assert result.record.members == [best.run_id, third.run_id]        # the best run sets the folds
    assert result.skipped == {other.run_id: f"other folds than {best.run_id}"}


@pytest.mark.parametrize("case, message", [
    ("folds", r"put 300 image\(s\) in other folds than .*: runs blend only when they share their folds"),
    ("slug", r"is a run of birds, not of pets: a blend takes runs of one competition"),
    ("classes", r"was trained on classes cat, dog, owl, but pets has cat, dog, fox"),
    ("unknown", r"no run nope of pets"),
])
def test_runs_that_cannot_be_blended_are_refused_in_one_line(tmp_path: Path, case: str, message: str):
    project, comp = Project(tmp_path), pets()
    a = fake_run(project, comp, 1.6, seed=1)
    if case == "folds":
        b = fake_run(project, comp, 1.5, seed=2, folds=(np.arange(300) + 1) % 3).run_id
    elif case == "slug":
        b = fake_run(project, comp, 1.5, seed=2, slug="birds").run_id
    elif case == "classes":
        b = fake_run(project, comp, 1.5, seed=2, classes=("cat", "dog", "owl")).run_id
    else:
        b = "nope"
    with pytest.raises(KitError, match=message) as err:
        blend_runs(project, comp, [a.run_id, b])
    assert "\n" not in str(err.value)
    assert not list((project.checkpoints / "pets").glob("blend-*"))


def test_the_blend_and_runs_commands_show_weights_nested_cv_and_ece(tmp_path: Path):
    (tmp_path / "competitions").mkdir()
    (tmp_path / "competitions" / "pets.py").write_text(PLUGIN)
    project, comp = Project(tmp_path), pets()
    a, b = fake_run(project, comp, 1.6, seed=1), fake_run(project, comp, 1.5, seed=2)
    done = kit_here(tmp_path, "blend", "pets", a.run_id, b.run_id, "--method", "scipy")
    assert done.returncode == 0, done.stderr
    assert "scipy/linear" in done.stdout and "scipy/log" in done.stdout and "equal/linear" not in done.stdout
    assert "nested CV log_loss" in done.stdout and f"--run blend-" in done.stdout
    listed = kit_here(tmp_path, "runs", "pets")
    assert listed.returncode == 0, listed.stderr
    assert "ECE" in listed.stdout and "blend of 2" in listed.stdout and "2 runs" in listed.stdout
    assert "--best: blend-" in listed.stdout
    refused = kit_here(tmp_path, "blend", "pets", a.run_id)
    assert refused.returncode == 1 and "a blend needs at least two runs" in refused.stderr


def test_predict_calibrates_a_log_loss_run_from_its_oof_and_leaves_accuracy_alone(tmp_path: Path):
    from kaggle_kit.prediction.predictor import calibration_for

    project = Project(tmp_path)
    sharp = fake_run(project, pets(), 6.0, seed=1)         # signal 6 with noise 1: far too sure when wrong
    cal = calibration_for(sharp, pets())
    assert cal.used and cal.nested_log_loss < cal.raw_log_loss
    assert not calibration_for(sharp, pets("accuracy")).used

"""CV with its uncertainty: the bootstrap interval's exact properties, its place in run.json, `runs`
and the training summary, the "inside the noise" note, and `--best` preferring grouped folds when the
saved audit found duplicate groups.

Only one test trains (a subprocess, 2 folds of one epoch each on the toy competition with copied
images, grouped); the others write run records with out-of-fold predictions the test chooses, so
which run is better, and by how much, is known exactly.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from toy_project import CLASSES, kit, kit_here, make_project, run_dirs, run_json

from kaggle_kit.metrics import Metric, get_metric
from kaggle_kit.project import Project
from kaggle_kit.training.cv import CVInterval, OutOfFold, compare, cv_interval, lead_note
from kaggle_kit.training.runs import RunRecord, choose_best, load_run

ACCURACY, LOG_LOSS, F1 = get_metric("accuracy"), get_metric("log_loss"), get_metric("f1_macro")
INTERVAL = re.compile(r"(\d\.\d{4}) \[(\d\.\d{4}), (\d\.\d{4})\] n=(\d+) (groups|images)")


def predictions(right: np.ndarray, n_classes: int = 3, confidence: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities: row ``i`` puts ``confidence`` on the true class when ``right[i]``,
    else on the next class."""
    y = np.arange(len(right)) % n_classes
    guess = np.where(right, y, (y + 1) % n_classes)
    proba = np.full((len(right), n_classes), (1 - confidence) / (n_classes - 1))
    proba[np.arange(len(right)), guess] = confidence
    return y, proba


def right_share(n: int, share: float, seed: int = 1) -> np.ndarray:
    right = np.zeros(n, bool)
    right[np.random.default_rng(seed).permutation(n)[:round(n * share)]] = True
    return right


# -- the interval's exact properties ----------------------------------------------------------------
@pytest.mark.parametrize("metric", [ACCURACY, LOG_LOSS, F1], ids=lambda m: m.name)
@pytest.mark.parametrize("grouped", [False, True])
def test_interval_brackets_the_score(metric, grouped: bool) -> None:
    y, proba = predictions(right_share(300, 0.8))
    groups = [f"g{i // 3}" for i in range(300)] if grouped else None
    ci = cv_interval(metric, y, proba, groups)
    assert ci.low < ci.score < ci.high
    assert ci.score == pytest.approx(metric(y, proba), abs=1e-6)
    assert (ci.units, ci.unit) == ((100, "groups") if grouped else (300, "images"))


def test_interval_narrows_with_more_units() -> None:
    widths = []
    for n in (100, 400, 1600):
        ci = cv_interval(ACCURACY, *predictions(right_share(n, 0.8)))
        widths.append(ci.high - ci.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.25)       # 1/sqrt(n)


def test_group_bootstrap_is_wider_when_groups_are_copies() -> None:
    """20 originals, 30 copies each, every copy right or wrong with its original: 600 images but
    only 20 independent pieces of evidence."""
    per_original = right_share(20, 0.7)
    y, proba = predictions(np.repeat(per_original, 30))
    groups = [f"cell{i // 30}" for i in range(600)]
    by_image, by_group = cv_interval(ACCURACY, y, proba), cv_interval(ACCURACY, y, proba, groups)
    assert by_image.score == by_group.score == 0.7
    assert (by_image.units, by_group.units) == (600, 20)
    assert by_group.high - by_group.low > 3 * (by_image.high - by_image.low)


@pytest.mark.parametrize("grouped", [False, True])
def test_a_metric_without_per_image_statistics_gets_the_same_resamples(grouped: bool) -> None:
    """A plugin metric with only its function is called once per resample, on the same resamples
    the vectorised path sums over: the same interval."""
    plain = Metric(name="plain_f1", fn=F1.fn, higher_is_better=True)
    y, proba = predictions(right_share(120, 0.6))
    groups = [f"g{i // 4}" for i in range(120)] if grouped else None
    assert cv_interval(plain, y, proba, groups, resamples=200) == cv_interval(F1, y, proba, groups, resamples=200)


def test_seeded_and_deterministic() -> None:
    y, proba = predictions(right_share(200, 0.75))
    assert cv_interval(LOG_LOSS, y, proba) == cv_interval(LOG_LOSS, y, proba)
    assert cv_interval(LOG_LOSS, y, proba, seed=1) != cv_interval(LOG_LOSS, y, proba, seed=2)


def test_log_loss_lead_is_in_its_direction() -> None:
    """The lower log loss leads; a lead is positive in the metric's better direction."""
    y, sharp = predictions(np.ones(300, bool), confidence=0.9)
    _, vague = predictions(np.ones(300, bool), confidence=0.5)
    ids = tuple(f"{i}.png" for i in range(300))
    assert LOG_LOSS(y, sharp) < LOG_LOSS(y, vague)
    lead = compare(LOG_LOSS, OutOfFold(ids=ids, y_true=y, proba=sharp), OutOfFold(ids=ids, y_true=y, proba=vague))
    assert lead is not None and lead.method == "paired"
    assert lead.lead == pytest.approx(LOG_LOSS(y, vague) - LOG_LOSS(y, sharp), abs=1e-6)
    assert 0 < lead.low <= lead.lead <= lead.high and not lead.inside_noise
    ci = cv_interval(LOG_LOSS, y, sharp)
    assert ci.low <= ci.score <= ci.high


def test_paired_needs_the_same_images() -> None:
    y, proba = predictions(np.ones(10, bool))
    a = OutOfFold(ids=tuple(f"{i}" for i in range(10)), y_true=y, proba=proba)
    b = OutOfFold(ids=tuple(f"x{i}" for i in range(10)), y_true=y, proba=proba)
    assert compare(ACCURACY, a, b) is None


# -- run records -------------------------------------------------------------------------------------
def fake_run(project: Project, right: np.ndarray, *, grouped: bool = False, copies: int = 1,
             prefix: str = "") -> RunRecord:
    """A complete run of the toy competition whose out-of-fold predictions are right where ``right``
    is (images ``<i>.png``; with ``copies``, consecutive images are copies of one original)."""
    y, proba = predictions(right)
    ids = [f"{CLASSES[c]}/{prefix}{i}.png" for i, c in enumerate(y)]
    groups = [f"dup{i // copies}" for i in range(len(y))] if grouped else None
    rec = RunRecord.create(project, "toy", backbone="simple_cnn",
                           config={"backbone": "simple_cnn", "group_duplicates": grouped},
                           classes=list(CLASSES), metric="accuracy", direction="max", n_splits=2)
    with (rec.path / "oof.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "fold", "label", *(["group"] if grouped else []), *CLASSES])
        for i, (image_id, label, p) in enumerate(zip(ids, y, proba)):
            w.writerow([image_id, i % 2, CLASSES[label], *([groups[i]] if grouped else []), *p])
    rec.cv_interval = cv_interval(ACCURACY, y, proba, groups)
    rec.cv, rec.status = rec.cv_interval.score, "complete"
    rec.save()
    return rec


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return make_project(tmp_path / "toy", per_class=4, test=3)


def test_interval_round_trips_and_old_run_json_loads(toy: Path) -> None:
    project = Project(toy)
    rec = fake_run(project, right_share(90, 0.8))
    again = load_run(project, "toy", rec.run_id)
    assert isinstance(again.cv_interval, CVInterval) and again.cv_interval == rec.cv_interval
    old = run_json(rec.path)
    del old["cv_interval"]                        # written before intervals existed
    old["config"]["group_duplicates"] = True
    rec.json_path.write_text(json.dumps(old))
    loaded = load_run(project, "toy", rec.run_id)
    assert loaded.cv_interval is None and loaded.cv == rec.cv and loaded.grouped
    out = kit_here(toy, "runs", "toy")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if rec.run_id in line)
    assert f" {rec.cv:.4f} " in row and "[" not in row and " yes " in row


def test_runs_says_when_the_lead_is_inside_the_noise(toy: Path) -> None:
    project = Project(toy)
    base = right_share(300, 0.8)
    near = base.copy()
    near[np.flatnonzero(base)[:11]] = False       # 20 images differ: 11 against, 9 for
    near[np.flatnonzero(~base)[:9]] = True
    first, second = fake_run(project, base), fake_run(project, near)
    out = kit_here(toy, "runs", "toy").stdout
    assert f"{first.run_id} leads {second.run_id} inside the noise" in out
    assert "paired bootstrap over 300 images" in out

    shutil.rmtree(second.path)
    fake_run(project, right_share(300, 0.5))
    out = kit_here(toy, "runs", "toy").stdout
    assert "noise" not in out and f"--best: {first.run_id}" in out


def test_best_prefers_grouped_folds_when_the_audit_found_groups(toy: Path) -> None:
    project = Project(toy)
    for i in range(3):                            # copies in the data: the audit finds groups
        shutil.copy(toy / "data/toy/train/red" / f"{i}.png", toy / "data/toy/train/red" / f"copy{i}.png")
    leaky = fake_run(project, right_share(90, 0.95))
    assert choose_best(project, project.competition("toy")).note == ""     # no audit saved yet
    assert kit_here(toy, "inspect", "toy").returncode == 0

    alone = choose_best(project, project.competition("toy"))
    assert alone.run.run_id == leaky.run_id
    found = re.search(r"has ungrouped folds and the audit found (\d+) duplicate group\(s\), so ungrouped CV "
                      r"reads optimistic; train with --group-duplicates$", alone.note)
    assert found and int(found.group(1)) >= 3     # the three copies (the toy's alike noisy colours may add more)

    honest = fake_run(project, right_share(90, 0.7), grouped=True, copies=3)
    answer = toy / "answer.csv"                   # the run has no fold models: submit a CSV made for it
    answer.write_text("id,label\n" + "".join(f"t{i}.jpg,{CLASSES[i % 3]}\n" for i in range(3)))
    out = kit_here(toy, "submit", "toy", "--best", "--dry-run", "--file", str(answer))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (f"picked {honest.run_id} (CV 0.7000), the best run with grouped folds, over {leaky.run_id} "
                        f"(CV 0.9556, ungrouped): the audit found {found.group(1)} duplicate group(s), so ungrouped CV reads "
                        f"optimistic")
    assert f"{honest.run_id}" in lines[-1] and "dry run" in lines[-1]
    runs = kit_here(toy, "runs", "toy").stdout
    assert f"--best: {honest.run_id}" in runs and "30 groups" in runs


# -- a real run --------------------------------------------------------------------------------------
def test_training_reports_the_interval_over_its_groups(toy: Path) -> None:
    """Three images copied: --group-duplicates keeps each with its copy, so the 15 images rest on at most
    12 units (the toy's noisy solid colours are alike enough that feature similarity may join more)."""
    for i in range(3):
        shutil.copy(toy / "data/toy/train/green" / f"{i}.png", toy / "data/toy/train/green" / f"copy{i}.png")
    trained = kit(toy, "train", "toy", "--folds", "2", "--head-epochs", "1", "--epochs", "1", "--group-duplicates")
    assert trained.returncode == 0, trained.stderr
    [run] = run_dirs(toy)
    record = run_json(run)["cv_interval"]
    with (run / "oof.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    units = len({r["group"] for r in rows})
    assert len(rows) == 15 and 2 <= units <= 12
    assert record["unit"] == "groups" and record["units"] == units
    assert record["low"] <= run_json(run)["cv"] == record["score"] <= record["high"]
    shown = f"{record['score']:.4f} [{record['low']:.4f}, {record['high']:.4f}] n={units} groups"
    assert f"CV accuracy {shown} (95% interval, grouped folds)" in trained.stdout
    for i in range(3):                            # every copy shares its original's group
        assert len({r["group"] for r in rows if r["id"] in (f"green/{i}.png", f"green/copy{i}.png")}) == 1
    listed = kit(toy, "runs", "toy")
    row = next(line for line in listed.stdout.splitlines() if run.name in line)
    assert INTERVAL.search(row).group(0) == shown and " yes " in row


def test_report_shows_the_interval(toy: Path) -> None:
    rec = fake_run(Project(toy), right_share(90, 0.8), grouped=True, copies=3)
    out = kit_here(toy, "report", "toy", rec.run_id, "--out", str(toy / "page"))
    assert out.returncode == 0, out.stderr
    page = (toy / "page" / "index.html").read_text()
    assert f"{rec.cv_interval.text()}, 95% bootstrap interval over groups" in page
    assert "folds grouped" in page


def test_runs_on_different_images_are_compared_by_their_intervals(toy: Path) -> None:
    """No pairing without the same images: the intervals' overlap decides, in the metric's direction."""
    project = Project(toy)
    first = fake_run(project, right_share(300, 0.8))
    near = fake_run(project, right_share(300, 0.78), prefix="b")
    runs = [first, near]
    lead = lead_note(ACCURACY, runs)
    assert lead.method == "overlap" and lead.inside_noise and lead.lead == pytest.approx(0.02, abs=1e-6)
    far = fake_run(project, right_share(300, 0.5), prefix="c")
    assert not lead_note(ACCURACY, [first, far]).inside_noise

    for rec, (score, low, high) in zip(runs, [(0.30, 0.25, 0.35), (0.45, 0.40, 0.50)]):
        rec.cv_interval = CVInterval(score=score, low=low, high=high, units=300, unit="images")
        rec.cv = score
        (rec.path / "oof.csv").unlink()
    lead = lead_note(LOG_LOSS, runs)              # lower is better: 0.30 leads 0.45, intervals apart
    assert lead.method == "overlap" and lead.lead == pytest.approx(0.15) and not lead.inside_noise
    assert "do not overlap" in lead.text()

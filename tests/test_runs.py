"""Run records: unique ids under concurrency, the JSON round trip, and listing runs best first."""
from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.training import runs
from kaggle_kit.errors import KitError
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.project import Project
from kaggle_kit.training.runs import FoldResult, RunRecord, best_run, list_runs, load_run, pick_run


def comp(metric: str) -> Competition:
    return Competition(slug="pets", classes=("cat", "dog"), metric=metric, train=ClassFolders(),
                       submission=Submission())


def create_concurrently(project: Project, n: int) -> list[str]:
    """``n`` threads released at once, each creating a run; returns their ids."""
    start = threading.Barrier(n)
    ids: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            start.wait()
            ids.append(RunRecord.create(project, "pets", backbone="cnn").run_id)
        except BaseException as e:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=create) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return ids


def assert_distinct_runs(project: Project, ids: list[str], n: int) -> None:
    assert len(ids) == len(set(ids)) == n
    assert all("-cnn-" in i for i in ids)
    base = project.checkpoints / "pets"
    assert sorted(p.name for p in base.iterdir()) == sorted(ids)
    assert all(RunRecord.load(base / i).run_id == i for i in ids)


def test_concurrent_creations_get_distinct_ids(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert_distinct_runs(project, create_concurrently(project, 48), 48)


def test_colliding_random_parts_are_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count()
    lock = threading.Lock()

    def few_tokens(nbytes: int) -> str:  # every token comes up twice: half the attempts collide
        with lock:
            return f"{next(counter) // 2:04x}"

    monkeypatch.setattr(runs.secrets, "token_hex", few_tokens)
    project = Project(tmp_path)
    assert_distinct_runs(project, create_concurrently(project, 16), 16)


def test_save_load_round_trip(tmp_path: Path) -> None:
    project = Project(tmp_path)
    rec = RunRecord.create(project, "pets", backbone="lite0", config={"image_size": 96, "backbone": "lite0"},
                           classes=["cat", "dog"], metric="log_loss", direction="min")
    rec.add_fold(FoldResult(fold=1, score=0.31, best_epoch=3, epochs=5, train_size=80, val_size=20, seconds=1.5))
    rec.add_fold(FoldResult(fold=0, score=0.29, best_epoch=4, epochs=6, train_size=80, val_size=20, seconds=1.25))
    rec.cv, rec.status, rec.n_splits = 0.3, "complete", 2
    rec.excluded = [{"path": "train/cat/bad.jpg", "reason": "empty file (0 bytes)"}]
    rec.warnings = ["3 images excluded"]
    rec.save()
    rec.add_submission(ref=12345, file="submissions/pets.csv", message="lite0 CV 0.3")

    loaded = RunRecord.load(rec.path)
    assert loaded == rec
    assert [f.fold for f in loaded.folds] == [0, 1]
    assert (loaded.backbone, loaded.image_size) == ("lite0", 96)
    assert loaded.fold_done(1) and not loaded.fold_done(2)
    assert loaded.model_paths() == [rec.path / "fold_0" / "best.keras", rec.path / "fold_1" / "best.keras"]
    assert loaded.submissions[0]["ref"] == 12345
    assert load_run(project, "pets", rec.run_id) == rec


def test_fold_results_on_disk_win_over_the_summary(tmp_path: Path) -> None:
    rec = RunRecord.create(Project(tmp_path), "pets")
    rec.save()                                    # run.json written before any fold finished
    rec.add_fold(FoldResult(fold=2, score=0.9, best_epoch=1, epochs=1, train_size=8, val_size=2, seconds=0.1))
    assert [f.fold for f in RunRecord.load(rec.path).folds] == [2]


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(KitError) as e:
        RunRecord.load(tmp_path)
    assert str(e.value) == f"{tmp_path / 'run.json'}: run record not found"
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(KitError) as e:
        RunRecord.load(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'run.json'}: not valid JSON")


def runs_with_scores(project: Project, scores: dict[str, float | None], status: str = "complete") -> dict[str, str]:
    """One run per name with the given CV; returns name -> run id."""
    out = {}
    for name, cv in scores.items():
        rec = RunRecord.create(project, "pets", backbone=name, config={"backbone": name})
        rec.cv, rec.status = cv, status
        rec.save()
        out[name] = rec.run_id
    return out


def names(runs: list[RunRecord]) -> list[str]:
    return [r.backbone for r in runs]


def test_list_runs_best_first_for_max_and_min_metrics(tmp_path: Path) -> None:
    project = Project(tmp_path)
    runs_with_scores(project, {"low": 0.2, "none": None, "high": 0.9, "mid": 0.5})
    assert names(list_runs(project, comp("accuracy"))) == ["high", "mid", "low", "none"]
    assert names(list_runs(project, comp("log_loss"))) == ["low", "mid", "high", "none"]


def test_best_run_uses_finished_scored_runs_only(tmp_path: Path) -> None:
    project = Project(tmp_path)
    with pytest.raises(KitError, match="no finished run of pets yet"):
        best_run(project, comp("accuracy"))
    ids = runs_with_scores(project, {"good": 0.8, "unscored": None})
    runs_with_scores(project, {"running": 0.99}, status="running")
    (project.checkpoints / "pets" / "damaged").mkdir()
    (project.checkpoints / "pets" / "damaged" / "run.json").write_text("{")
    assert names(list_runs(project, comp("accuracy"), complete_only=True)) == ["good", "unscored"]
    assert best_run(project, comp("accuracy")).run_id == ids["good"]
    assert pick_run(project, comp("accuracy"), None).run_id == ids["good"]
    assert pick_run(project, comp("accuracy"), ids["unscored"]).run_id == ids["unscored"]


def test_unknown_run_lists_known_ones(tmp_path: Path) -> None:
    project = Project(tmp_path)
    ids = runs_with_scores(project, {"only": 0.5})
    with pytest.raises(KitError) as e:
        load_run(project, "pets", ids["only"] + "x")
    msg = str(e.value)
    assert msg.startswith(f"unknown run of pets '{ids['only']}x'; did you mean {ids['only']}")
    assert "\n" not in msg


def test_config_is_a_train_config_read_from_and_written_as_a_dict(tmp_path: Path) -> None:
    import json

    from kaggle_kit.config import TrainConfig

    project = Project(tmp_path)
    rec = RunRecord.create(project, "pets", backbone="cnn")
    old = json.loads(rec.json_path.read_text())
    old["config"] = {"backbone": "simple_cnn", "image_size": 32, "folds": 3, "from_a_later_kit": 1}
    rec.json_path.write_text(json.dumps(old))      # a run.json as earlier kits wrote it

    loaded = load_run(project, "pets", rec.run_id)
    assert loaded.config == TrainConfig(backbone="simple_cnn", image_size=32, folds=3)
    assert (loaded.backbone, loaded.image_size, loaded.config.seed) == ("simple_cnn", 32, 42)
    loaded.save()
    written = json.loads(rec.json_path.read_text())["config"]
    assert written == TrainConfig(backbone="simple_cnn", image_size=32, folds=3).to_dict()
    loaded.config = {"backbone": "resnet50"}       # a mapping assigned is read as run.json holds it
    assert isinstance(loaded.config, TrainConfig) and loaded.config.backbone == "resnet50"

"""End to end, as a user runs it: ``kaggle-kit train``, ``runs`` and ``predict`` in subprocesses on a
tiny three-colour competition (see toy_project.py).

Two trainings run at once when the module starts (a from-scratch CNN on 2 folds, and a pretrained
MobileNetV3 on a 0.3 holdout whose phase 1 runs on cached backbone features); the tests then read
what they left behind. The MobileNetV3 "pretrained" weights are a random-init model saved to a local
``.weights.h5`` file (no internet here): its features are near zero, so it scores at chance; the
test is about the mechanics. The second prediction and the feature-reuse run call the same code in
this process, which saves starting TensorFlow twice more.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
from toy_project import CLASSES, kit, make_project, run_dirs, run_json, start_kit

from kaggle_kit.project import Project
from kaggle_kit.training.runs import best_run

pytestmark = pytest.mark.filterwarnings("ignore:.*shuffle=True.*:UserWarning")  # Keras, in-process runs

PER_CLASS = 12
MOBILENET = ("--backbone", "mobilenet_v3_small", "--size", "32", "--holdout", "0.3")


def finished(proc) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=400)
    return proc.returncode, out, err


def written_path(stdout: str) -> Path:
    match = re.search(r"wrote (\S+\.csv)", stdout)
    assert match, f"predict did not say where it wrote: {stdout!r}"
    return Path(match.group(1))


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def feature_files(root: Path) -> dict[str, tuple[int, int]]:
    """``name -> (inode, size)`` of every file in the feature cache. Every cache write is a new file
    renamed into place, so a rewrite changes the inode; the mtime is not compared because reading an
    entry touches it (least-recently-used eviction)."""
    folder = root / "cache" / "features"
    return {p.name: (p.stat().st_ino, p.stat().st_size) for p in folder.iterdir()} if folder.is_dir() else {}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("e2e"), per_class=PER_CLASS)


def save_random_mobilenet(path: Path) -> Path:
    import keras

    keras.applications.MobileNetV3Small(weights=None, include_top=False, input_shape=(32, 32, 3),
                                        pooling="avg").save_weights(path)
    return path


@pytest.fixture(scope="module")
def trained(root: Path) -> dict[str, dict]:
    """Both first trainings, run together; per name: rc, stdout, stderr and the run folder."""
    procs = {"cnn": start_kit(root, "train", "toy", "--folds", "2")}
    out = {}
    try:
        weights = save_random_mobilenet(root / "mobilenet_v3_small_random.weights.h5")  # while the CNN starts
        procs["mobilenet"] = start_kit(root, "train", "toy", *MOBILENET, "--weights", str(weights),
                                       "--head-epochs", "3", "--epochs", "1")
        for name, proc in procs.items():
            rc, stdout, stderr = finished(proc)
            assert rc == 0, f"{name} training failed (rc {rc}):\n{stdout}\n{stderr}"
            run_id = re.search(r"^run (\S+) ->", stdout, re.M).group(1)
            out[name] = {"rc": rc, "stdout": stdout, "stderr": stderr, "dir": root / "checkpoints" / "toy" / run_id}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


@pytest.fixture(scope="module")
def weights(root: Path, trained) -> Path:
    return root / "mobilenet_v3_small_random.weights.h5"


@pytest.fixture(scope="module")
def cnn(trained) -> Path:
    return trained["cnn"]["dir"]


@pytest.fixture(scope="module")
def mobilenet(trained) -> Path:
    return trained["mobilenet"]["dir"]


# -- a from-scratch model on 2 folds ------------------------------------------------------------------
def test_train_records_a_complete_two_fold_run(cnn: Path, trained) -> None:
    rec = run_json(cnn)
    assert rec["status"] == "complete"
    assert rec["n_splits"] == 2 and [f["fold"] for f in rec["folds"]] == [0, 1]
    assert rec["train_size"] == 3 * PER_CLASS and rec["excluded"] == []
    assert rec["cv"] > 0.5, "three well separated colours: far above chance (1/3) after 4 epochs"
    assert rec["config"]["backbone"] == "simple_cnn" and rec["config"]["seed"] == 42
    for k in (0, 1):
        assert (cnn / f"fold_{k}" / "best.keras").stat().st_size > 0
        assert not (cnn / f"fold_{k}" / "last.keras").exists(), "the resume checkpoint is dropped when a fold ends"
    oof = rows(cnn / "oof.csv")
    assert sorted(r["id"] for r in oof) == sorted(f"{c}/{i}.png" for c in CLASSES for i in range(PER_CLASS))
    history = rows(cnn / "history.csv")
    assert {(r["fold"], r["phase"]) for r in history} == {("0", "2"), ("1", "2")}
    assert re.search(rf"CV accuracy {rec['cv']:.4f} \[\d\.\d{{4}}, \d\.\d{{4}}\] n=36 images \(95% interval, "
                     r"ungrouped folds\) over 2 split\(s\)", trained["cnn"]["stdout"])


def test_runs_lists_the_run(root: Path, cnn: Path) -> None:
    result = kit(root, "runs", "toy")
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if cnn.name in ln)
    assert f"{run_json(cnn)['cv']:.4f}" in line and "2/2" in line and "complete" in line


def test_predict_best_writes_a_valid_submission_and_never_overwrites(root: Path, cnn: Path, mobilenet: Path) -> None:
    from kaggle_kit.prediction.predictor import make_submission

    # the CNN wins on CV over the random-weight MobileNetV3, so --best picks it
    assert run_json(cnn)["cv"] > run_json(mobilenet)["cv"]
    first = kit(root, "predict", "toy", "--best")
    assert first.returncode == 0, first.stderr
    path = written_path(first.stdout)
    assert path.parent == root / "submissions" / "toy" and path.name.startswith(cnn.name)
    sub = rows(path)
    test_ids = sorted(p.name for p in (root / "data" / "toy" / "test").iterdir())
    assert list(sub[0]) == ["id", "label"]
    assert sorted(r["id"] for r in sub) == test_ids, "every test id exactly once"
    assert {r["label"] for r in sub} <= set(CLASSES)
    truth = {f"t{i}.jpg": CLASSES[i % 3] for i in range(len(test_ids))}
    assert sum(r["label"] == truth[r["id"]] for r in sub) / len(sub) > 0.5
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    # the second prediction in this process (what `predict` calls; it saves starting TensorFlow again)
    project = Project(root)
    comp = project.competition("toy")
    again = make_submission(project, comp, best_run(project, comp), reuse=False)
    assert again != path and again.parent == path.parent
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before, "the first submission is untouched"
    assert sorted(r["id"] for r in rows(again)) == test_ids


# -- a pretrained backbone: phase 1 on cached features, phase 2 fine-tuning, a holdout split ------------
def test_pretrained_run_trains_both_phases_on_a_holdout(mobilenet: Path) -> None:
    rec = run_json(mobilenet)
    assert rec["status"] == "complete" and rec["n_splits"] == 1
    (fold,) = rec["folds"]
    assert fold["val_size"] == math.ceil(0.3 * 3 * PER_CLASS) and fold["train_size"] + fold["val_size"] == 3 * PER_CLASS
    history = rows(mobilenet / "history.csv")
    phases = [r["phase"] for r in history]
    assert phases.count("1") == 3 and phases.count("2") == 1, history
    assert {r["fold"] for r in history} == {"0"}
    assert len(rows(mobilenet / "oof.csv")) == fold["val_size"]


def test_backbone_features_are_cached_and_reused(root: Path, weights: Path, mobilenet: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from kaggle_kit.training.trainer import train

    entries = feature_files(root)
    assert sorted(Path(n).suffix for n in entries) == [".bin", ".json"], entries
    meta = json.loads((root / "cache" / "features" / next(n for n in entries if n.endswith(".json"))).read_text())
    assert meta["backbone"] == "mobilenet_v3_small" and meta["n"] == 3 * PER_CLASS and meta["size"] == 32

    # a second run in this process (as a notebook would; it saves starting TensorFlow again)
    monkeypatch.setenv("KAGGLE_KIT_CACHE", str(root / "cache"))
    project = Project(root)
    comp = project.competition("toy")
    first = run_json(mobilenet)["config"]
    config = comp.config(None, {"backbone": first["backbone"], "image_size": 32, "holdout": 0.3,
                                "weights": str(weights), "head_epochs": 1, "finetune_epochs": 0,
                                "tta": False})    # the TTA views' features are a cache of their own (test_tta.py)
    seen: list = []
    second = train(project, comp, config, report=seen.append)
    assert second.status == "complete" and second.run_id != mobilenet.name
    assert feature_files(root) == entries, "the second run read the cached features: same files, not rewritten"
    stages = [(e.message, e.cached) for e in seen if type(e).__name__ == "Stage"]
    assert (f"{3 * PER_CLASS} images at 32px", True) in stages and ("mobilenet_v3_small features", True) in stages
    assert not any(m.startswith(("caching", "computing")) for m, _ in stages), "nothing reads as computed again"
    [phase_1] = [e for e in seen if type(e).__name__ == "EpochEnd"]
    assert phase_1.fold == 0 and phase_1.higher_is_better is True     # accuracy
    assert {r["phase"] for r in rows(second.path / "history.csv")} == {"1"}


# -- bad input: one line, no traceback ------------------------------------------------------------------
def one_error_line(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_competition_is_one_line_listing_the_known_ones(root: Path) -> None:
    line = one_error_line(kit(root, "train", "no-such-comp"))
    assert "no-such-comp" in line and "toy" in line


def test_missing_train_folder_names_the_path_and_the_layout(tmp_path: Path) -> None:
    project = make_project(tmp_path, per_class=1, test=1)
    train = project / "data" / "toy" / "train"
    for f in train.rglob("*.png"):
        f.unlink()
    for d in sorted(train.iterdir()):
        d.rmdir()
    train.rmdir()
    line = one_error_line(kit(project, "train", "toy", "--folds", "2"))
    assert str(train) in line and "train/<class>/<image>" in line
    (run,) = run_dirs(project)
    assert run_json(run)["status"] == "failed"

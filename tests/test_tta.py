"""TTA chosen on out-of-fold predictions: a policy that helps CV beyond the noise is chosen, one that
does not is not, the choice and every policy's CV are in run.json, and predict uses the choice."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kaggle_kit.metrics import get_metric
from kaggle_kit.training.tta import VIEWS_FILE, candidate_keys, choose_tta, load_fold_views
from toy_project import kit_here, make_project, run_dirs, run_json


def noisy_views(y: np.ndarray, rng: np.random.Generator, *, independent: bool) -> dict[str, np.ndarray]:
    """Probabilities of 3 classes for 'id' and the other view keys: signal plus noise, the noise of
    each view drawn anew (averaging views helps) or shared (it cannot)."""
    signal = np.eye(3)[y] * 0.9
    base = rng.normal(0, 0.6, signal.shape)
    out = {}
    for key in candidate_keys("hflip"):
        noise = rng.normal(0, 0.6, signal.shape) if independent and key == "hflip" else base
        logits = signal + noise
        out[key] = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def write_folds(tmp_path: Path, y: np.ndarray, independent: bool) -> list[Path]:
    rng = np.random.default_rng(0)
    dirs = []
    for k, part in enumerate(np.array_split(np.arange(len(y)), 2)):
        d = tmp_path / f"fold_{k}"
        d.mkdir()
        views = noisy_views(y[part], rng, independent=independent)
        np.save(d / "oof.npy", views.pop("id"))
        np.savez(d / VIEWS_FILE, **views)
        dirs.append(d)
    return dirs


def test_a_policy_that_helps_cv_beyond_the_noise_is_chosen(tmp_path: Path) -> None:
    y = np.arange(1200) % 3
    dirs = write_folds(tmp_path, y, independent=True)
    assert set(load_fold_views(dirs[0])) == {"id", "hflip", "id@1.15", "hflip@1.15"}
    choice = choose_tta(get_metric("accuracy"), "hflip", dirs, y, None)
    assert list(choice.scores) == ["none", "flip", "scale", "flip+scale"]
    assert choice.chosen == "flip", choice.note
    assert choice.scores["flip"]["score"] > choice.scores["none"]["score"] + 0.02
    assert "beyond the noise" in choice.note


def test_no_tta_when_no_policy_beats_plain_prediction(tmp_path: Path) -> None:
    y = np.arange(300) % 3
    choice = choose_tta(get_metric("accuracy"), "hflip", write_folds(tmp_path, y, independent=False), y, None)
    assert choice.chosen == "none"
    assert choice.scores["flip"]["score"] == choice.scores["none"]["score"]


def test_a_symmetry_without_mirrors_scores_no_flip(tmp_path: Path) -> None:
    y = np.arange(300) % 3
    choice = choose_tta(get_metric("log_loss"), "none", write_folds(tmp_path, y, independent=True), y, None)
    assert list(choice.scores) == ["none", "scale"]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = make_project(tmp_path_factory.mktemp("tta"), per_class=10, test=6)
    result = kit_here(root, "train", "toy", "--folds", "2", "--head-epochs", "2")
    assert result.returncode == 0, result.stderr
    [run] = run_dirs(root)
    return root, run


def test_the_oof_chosen_tta_is_in_run_json(toy_run: tuple[Path, Path]) -> None:
    _, run = toy_run
    rec = run_json(run)
    assert list(rec["tta_cv"]) == ["none", "flip", "scale", "flip+scale"]
    assert rec["tta"] in rec["tta_cv"] and rec["tta_note"]
    assert rec["tta_cv"]["none"]["score"] == rec["cv"]
    assert all((run / f"fold_{k}" / VIEWS_FILE).is_file() for k in (0, 1))


def test_predict_uses_the_run_s_chosen_tta_unless_told(toy_run: tuple[Path, Path]) -> None:
    root, run = toy_run
    rec = run_json(run)
    (run / "run.json").write_text(json.dumps({**rec, "tta": "scale"}))   # as if scale had won on the OOF
    chosen = kit_here(root, "predict", "toy")
    assert chosen.returncode == 0, chosen.stderr
    assert f"{run.name}-tta-scale.csv" in chosen.stdout
    plain = kit_here(root, "predict", "toy", "--no-tta")
    assert plain.returncode == 0 and f"{run.name}.csv" in plain.stdout
    mirrored = kit_here(root, "predict", "toy", "--tta")
    assert mirrored.returncode == 0 and f"{run.name}-tta.csv" in mirrored.stdout
    refused = kit_here(root, "predict", "toy", "--tta", "d8")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: run {run.name}: TTA 'd8' shows views (id, hflip, rot90, rot90_hflip, rot180, vflip, rot270, "
        f"rot270_hflip) that symmetry 'hflip' does not allow; allowed: none, flip, scale, flip+scale"]


def lite0_run(root: Path, *extra: str) -> dict:
    result = kit_here(root, "train", "toy", "--backbone", "efficientnet_lite0", "--weights", "imagenet", "--size", "32",
                      "--holdout", "0.3", "--head-epochs", "2", "--batch-size", "8", *extra)
    assert result.returncode == 0, result.stderr
    assert "TTA on the out-of-fold images: none " in result.stdout
    return run_json(run_dirs(root)[-1])


def test_a_head_only_run_scores_its_views_on_cached_features(tmp_path: Path) -> None:
    rec = lite0_run(make_project(tmp_path, per_class=10, test=3))
    assert list(rec["tta_cv"]) == ["none", "flip", "scale"]          # the views' features: id, hflip, id@1.15
    metas = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "features").glob("*.json")]
    assert sorted(m["views"] for m in metas) == [["hflip", "id@1.15"], ["id"]]


def test_a_d8_plugin_caches_four_views_and_scores_them_above_the_cut(tmp_path: Path) -> None:
    root = make_project(tmp_path, per_class=10, test=3)
    plugin = root / "competitions" / "toy.py"
    plugin.write_text(plugin.read_text().replace('submission=Submission(labels="name"),',
                                                 'submission=Submission(labels="name"), symmetries="d8",'))
    rec = lite0_run(root, "--epochs", "1", "--finetune-from", "block7_add", "--augment", "flip")
    (acts,) = [json.loads(p.read_text()) for p in (root / "cache" / "activations").glob("*.json")]
    assert acts["views"] == ["id", "hflip", "rot90", "rot90_hflip"] and acts["n"] == 4 * 30
    assert list(rec["tta_cv"]) == ["none", "flip", "d8_half"]

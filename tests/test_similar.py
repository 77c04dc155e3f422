"""Copies the perceptual hash misses (backbone features), the few-originals warning, and groups by a
file-name pattern.

The sets are augmented from a few distinct synthetic originals (tests/augmented.py): each copy is
turned, flipped, shifted, cropped and colour-jittered. The features come from the real offline
ImageNet efficientnet_lite0.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from augmented import write_set
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.data.grouping import duplicate_groups
from kaggle_kit.data.manifest import build_manifest
from kaggle_kit.errors import DataError, KitError
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.model.similar import copy_groups, similar_pairs
from kaggle_kit.project import Project
from kaggle_kit.tools.audit import audit_warnings, run_audit, save_audit
from kaggle_kit.training.folds import make_splits

ORIGINALS, COPIES = 15, 9          # per class: 2 x 15 x (1 + 9) = 300 images of 96 px
SET = Competition(slug="copies", classes=("a", "b"), metric="accuracy", train=ClassFolders(),
                  submission=Submission())


@pytest.fixture(scope="module")
def augmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list[tuple[str, int]]]:
    """A project whose train set is 30 originals and 9 copies of each; (project, original of each file)."""
    project = Project(tmp_path_factory.mktemp("copies"))
    source = {}
    for cls, seed in (("a", 21), ("b", 22)):
        for name, k in write_set(project.data_root("copies") / "train" / cls, ORIGINALS, COPIES, seed=seed).items():
            source[f"{cls}/{name}"] = (cls, k)
    return project, source


def _original_of(manifest, source) -> np.ndarray:
    keys = [source[f"{p.parent.name}/{p.name}"] for p in manifest.paths]
    return np.unique(np.array([f"{c}{k}" for c, k in keys]), return_inverse=True)[1].ravel()


def _scores(groups: list[str], original: np.ndarray, is_copy: np.ndarray) -> tuple[float, float]:
    """(share of copies in their original's group, share of images whose group holds another original)."""
    groups = np.asarray(groups)
    first = {o: i for i, o in reversed(list(enumerate(original)))}
    together = np.mean([groups[i] == groups[first[o]] for i, o in enumerate(original) if is_copy[i]])
    wrong = np.mean([(original[groups == groups[i]] != o).any() for i, o in enumerate(original)])
    return float(together), float(wrong)


def test_turned_flipped_cropped_recoloured_copies_are_grouped_with_their_original(augmented) -> None:
    project, source = augmented
    manifest = build_manifest(SET, project.data_root("copies"), "train", cache_dir=project.cache)
    original = _original_of(manifest, source)
    is_copy = np.array([not p.name.endswith("_0.png") for p in manifest.paths])

    together, wrong = _scores(copy_groups(project, manifest), original, is_copy)
    assert together >= 0.90 and wrong <= 0.01, (together, wrong)
    hashed, _ = _scores(duplicate_groups(manifest, cache_dir=project.cache), original, is_copy)
    assert hashed < 0.5, hashed           # the perceptual hash alone misses most of these copies

    splits = make_splits(manifest.labels, folds=3, seed=0, groups=copy_groups(project, manifest))
    for train_idx, val_idx in splits:      # copies found stay on one side: an original is rarely split
        split_originals = set(original[train_idx]) & set(original[val_idx])
        assert len(split_originals) <= 0.1 * ORIGINALS * 2


def test_train_group_duplicates_splits_by_the_copies_found(augmented) -> None:
    """The trainer's folds with --group-duplicates: few originals straddle a split; without, nearly all."""
    from kaggle_kit.training.trainer import prepare

    project, source = augmented

    def straddling(group_duplicates: bool) -> float:
        config = SET.config(overrides={"group_duplicates": group_duplicates, "folds": 3, "backbone": "simple_cnn",
                                       "weights": "none", "image_size": 16})
        prepared = prepare(project, SET, config)
        original = _original_of(prepared.manifest, source)
        return max(len(set(original[tr]) & set(original[va])) for tr, va in prepared.splits) / ORIGINALS / 2

    assert straddling(True) <= 0.1
    assert straddling(False) >= 0.8


def test_blockwise_search_finds_exactly_the_pairs_above_the_threshold_and_the_background() -> None:
    rng = np.random.default_rng(0)
    desc = rng.normal(size=(300, 16))
    desc[150:] += 2 * rng.normal(size=16)     # half the rows alike: a higher background
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    scores = desc @ desc.T
    off = ~np.eye(300, dtype=bool)
    median = np.array([np.median(scores[i][off[i]]) for i in range(300)])
    for margin in (0.0, 0.3):
        level = median + margin
        want = {(int(i), int(j)) for i, j in zip(*np.nonzero(scores >= 0.6)) if i < j
                and scores[i, j] >= max(level[i], level[j])}
        assert want and (margin == 0.0 or any(i >= 150 for i, _ in want))
        for block in (1, 300 * 7, 1 << 22):    # one row, seven rows, everything at once
            i, j = similar_pairs(desc, 0.6, margin=margin, block_elements=block)
            assert set(zip(i.tolist(), j.tolist())) == want, (margin, block)


def test_images_that_all_look_alike_are_not_copies(tmp_path: Path) -> None:
    """Random noise of random sizes: the network sees one texture (cosines up to 0.99), the hash none."""
    project = Project(tmp_path)
    rng = np.random.default_rng(6)
    for c in ("a", "b"):
        for k in range(15):
            h, w = rng.integers(16, 48, 2)
            path = project.data_root("copies") / "train" / c / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    manifest = build_manifest(SET, project.data_root("copies"), "train", cache_dir=project.cache)
    assert len(set(copy_groups(project, manifest))) >= 25


def test_audit_warns_when_the_train_set_rests_on_few_originals(augmented) -> None:
    project, _ = augmented
    audit = run_audit(project, SET)
    assert 24 <= audit.originals <= 40, audit.originals          # 30 originals behind 300 images
    warning = f"about {audit.originals} originals behind 300 images: CV will read optimistic and noisy; " \
              f"train with --group-duplicates"
    assert warning in audit.warnings()
    save_audit(audit, project, SET)       # the trainer reads it back; with grouped folds, still noisy
    assert f"about {audit.originals} originals behind 300 images: CV rests on {audit.originals} independent " \
           f"units and will read noisy" in audit_warnings(project, SET, grouped=True)
    assert not any("originals" in w for w in run_audit(project, SET, features=False).warnings())


def test_no_warning_when_every_image_is_its_own_original(tmp_path: Path) -> None:
    project = Project(tmp_path)
    for cls, seed in (("a", 31), ("b", 32)):
        write_set(project.data_root("copies") / "train" / cls, 20, 0, seed=seed)
    audit = run_audit(project, SET)
    assert audit.originals >= 38 and not any("originals" in w for w in audit.warnings())


# -- groups by a file-name pattern -------------------------------------------------------------------
PATTERN_PLUGIN = '''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders

COMPETITION = Competition(slug="cells", classes=("a", "b"), metric="accuracy", train=ClassFolders(),
                          submission=Submission(), group_pattern={pattern!r})
'''


def _cells(tmp_path: Path, pattern: str) -> Project:
    """Images named like the blood-cell set, ``_<cell>_<copy>.png``: 12 cells, 5 images each."""
    (tmp_path / "competitions").mkdir()
    (tmp_path / "competitions" / "cells.py").write_text(PATTERN_PLUGIN.format(pattern=pattern))
    rng = np.random.default_rng(0)
    for cell in range(12):
        folder = tmp_path / "data" / "cells" / "train" / ("a" if cell % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        for copy in range(5):
            cv2.imwrite(str(folder / f"_{cell}_{100 * cell + copy}.png"), rng.integers(0, 255, (8, 8, 3), np.uint8))
    return Project(tmp_path)


def test_a_file_name_pattern_groups_the_images_and_no_group_straddles_a_split(tmp_path: Path, kit_env) -> None:
    project = _cells(tmp_path, r"_(\d+)_")
    comp = project.competition("cells")
    manifest = build_manifest(comp, project.data_root("cells"), "train", cache_dir=project.cache)
    cell = {f"{p.parent.name}/{p.name}": p.name.split("_")[1] for p in manifest.paths}
    assert list(manifest.groups) == [cell[f"{p.parent.name}/{p.name}"] for p in manifest.paths]
    for train_idx, val_idx in make_splits(manifest.labels, folds=3, seed=0, groups=manifest.groups):
        assert not {manifest.groups[i] for i in train_idx} & {manifest.groups[i] for i in val_idx}


def test_a_pattern_that_matches_no_file_name_is_one_line_naming_the_plugin(tmp_path: Path, kit_env) -> None:
    project = _cells(tmp_path, r"^cell(\d+)-")
    comp = project.competition("cells")
    with pytest.raises(DataError) as e:
        build_manifest(comp, project.data_root("cells"), "train", cache_dir=project.cache)
    assert str(e.value).startswith(f"{tmp_path / 'competitions' / 'cells.py'}: group_pattern r'^cell(\\d+)-' "
                                   f"matches none of the 60 train file names")
    assert "\n" not in str(e.value)


def test_a_bad_regex_is_one_line_naming_the_plugin(tmp_path: Path, kit_env) -> None:
    project = _cells(tmp_path, r"_(\d+_")
    with pytest.raises(KitError) as e:
        project.competition("cells")
    assert str(e.value).startswith(f"{tmp_path / 'competitions' / 'cells.py'}: cells: group_pattern r'_(\\d+_' "
                                   f"is not a regular expression (missing ), unterminated subpattern")
    assert "\n" not in str(e.value)

"""Test-time augmentation chosen on out-of-fold predictions: ``predict`` uses TTA only where it helped CV.

At the end of each fold its best model predicts the fold's validation images under every view key
the candidate policies need (:func:`fold_keys`; ``fold_<k>/oof_views.npz``). When the run completes,
:func:`choose_tta` averages those per policy, scores each policy's out-of-fold predictions in the
competition metric, and keeps the best one when its lead over plain prediction is beyond the noise
(a paired bootstrap, :func:`kaggle_kit.training.cv.compare`), else ``none``. ``run.json`` holds every
policy's CV (``tta_cv``) and the choice (``tta``); ``oof_tta_<policy>.csv`` the chosen policy's OOF.

What each training path can afford to score:

=======================  =========================================================================
path                     view keys scored at the fold's end
=======================  =========================================================================
decoded images           every key of the symmetry's candidates (hflip: 4 passes over the fold's
                         validation images; d8: 10)
cached activations       the symmetry's cached views only (no zoom: a new view is a new cache)
cached features (head)   the symmetry's views and ``id@1.15`` (their features, computed once and
                         cached: hflip 2 extra passes over the training images)
=======================  =========================================================================
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kaggle_kit.metrics import Metric
from kaggle_kit.symmetry import SCALE, get_symmetry, tta_candidates
from kaggle_kit.training.cv import OutOfFold, compare, cv_interval

__all__ = ["VIEWS_FILE", "candidate_keys", "head_keys", "save_fold_views", "load_fold_views", "choose_tta",
           "TTAChoice"]

VIEWS_FILE = "oof_views.npz"


def candidate_keys(symmetry: str, available: Sequence[str] | None = None) -> tuple[str, ...]:
    """Every view key the candidate policies of ``symmetry`` need (only ``available`` ones, if given)."""
    keys: dict[str, None] = {}
    for policy in tta_candidates(symmetry, None if available is None else tuple(available)):
        keys.update(dict.fromkeys(policy.keys))
    return tuple(keys)


def head_keys(symmetry: str) -> tuple[str, ...]:
    """The view keys a head-only run scores: its symmetry's views and the plain image magnified."""
    return (*get_symmetry(symmetry).views, f"id@{SCALE}")


def save_fold_views(fold_dir: Path, keys: Sequence[str], predict: Callable[[str], np.ndarray]) -> None:
    """``predict(key)`` (validation probabilities) for each key but ``id`` (``oof.npy`` has it)."""
    from kaggle_kit.atomic import atomic_path

    out = {k: np.asarray(predict(k), np.float32) for k in keys if k != "id"}
    if not out:
        return
    with atomic_path(fold_dir / VIEWS_FILE, suffix=".npz") as tmp:
        np.savez(tmp, **out)


def load_fold_views(fold_dir: Path) -> dict[str, np.ndarray]:
    """A fold's validation probabilities per view key, ``id`` (``oof.npy``) included."""
    views = {"id": np.load(fold_dir / "oof.npy")}
    path = fold_dir / VIEWS_FILE
    if path.is_file():
        with np.load(path) as data:
            views.update({k: data[k] for k in data.files})
    return views


class TTAChoice:
    """Each candidate policy's out-of-fold CV, and the one ``predict`` uses."""

    def __init__(self, chosen: str, scores: dict[str, dict], note: str, proba: dict[str, list[np.ndarray]]) -> None:
        self.chosen, self.scores, self.note, self.proba = chosen, scores, note, proba


def choose_tta(metric: Metric, symmetry: str, fold_dirs: Sequence[Path], y_true: np.ndarray,
               groups: Sequence[str] | None) -> TTAChoice:
    """Score every policy whose views every fold predicted; keep the best if it beats ``none`` beyond
    the noise. ``y_true`` (and ``groups``) are in the order of the folds' validation images."""
    per_fold = [load_fold_views(d) for d in fold_dirs]
    have = set.intersection(*(set(v) for v in per_fold))
    proba = {p.name: [np.mean([f[k] for k in p.keys], axis=0) for f in per_fold]
             for p in tta_candidates(symmetry, tuple(have))}
    ids = tuple(str(i) for i in range(len(y_true)))
    oof = {name: OutOfFold(ids=ids, y_true=y_true, proba=np.concatenate(ps),
                           groups=None if groups is None else tuple(groups)) for name, ps in proba.items()}
    scores = {name: cv_interval(metric, y_true, o.proba, groups).to_dict() for name, o in oof.items()}
    sign = 1.0 if metric.higher_is_better else -1.0
    cost = {p.name: len(p.keys) for p in tta_candidates(symmetry)}
    best = max(scores, key=lambda n: (sign * scores[n]["score"], -cost[n]))     # a tie: the cheaper
    if best == "none" or len(scores) == 1:
        return TTAChoice("none", scores, "no TTA policy scored above plain prediction on the out-of-fold images",
                         proba)
    lead = compare(metric, oof[best], oof["none"], names=(f"TTA {best}", "no TTA"))
    if lead is None or lead.inside_noise:
        return TTAChoice("none", scores, f"{lead.text() if lead else best}; predict uses no TTA", proba)
    return TTAChoice(best, scores, lead.text(), proba)

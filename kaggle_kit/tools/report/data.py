"""What a report shows, read from the run: ``history.csv`` and ``oof.csv``, the most confident
mistakes and the calibration bins."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_kit.project import Project
from kaggle_kit.prediction.calibrate import ECE_BINS, calibration_bins
from kaggle_kit.training.cv import OutOfFold
from kaggle_kit.training.runs import RunRecord

__all__ = ["Mistake", "load_history", "image_paths", "confident_mistakes",
           "calibration_bins", "CALIBRATION_BINS"]

CALIBRATION_BINS = ECE_BINS      # one reading of calibration error: the runs table's too


@dataclass(frozen=True, kw_only=True)
class Mistake:
    id: str
    fold: int
    true: str
    predicted: str
    p_predicted: float
    p_true: float
    thumb: str | None = None            # path relative to the page, None when the image is unavailable
    note: str = ""


def load_history(path: Path):
    """``history.csv`` sorted by fold, phase and epoch, with ``step`` = the epoch's position in its
    fold (phase 2 continues after phase 1); a row repeated by a resume keeps its last copy."""
    import pandas as pd

    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as e:
        raise KitError(f"{path}: not a readable history CSV ({e})") from None
    missing = {"fold", "phase", "epoch"} - set(frame.columns)
    if missing:
        raise KitError(f"{path}: history has no column(s) {', '.join(sorted(missing))}")
    if frame.empty:
        return None
    frame = (frame.drop_duplicates(["fold", "phase", "epoch"], keep="last")
             .sort_values(["fold", "phase", "epoch"]).reset_index(drop=True))
    frame["step"] = frame.groupby("fold").cumcount() + 1
    return frame


def image_paths(project: Project, competition: Competition, run: RunRecord) -> dict[str, Path]:
    """Training image id -> path, through the same manifest the run trained on."""
    from kaggle_kit.data.manifest import build_manifest

    manifest = build_manifest(competition, project.data_root(competition.slug), "train",
                              cache_dir=project.cache, limit=run.config.limit,
                              seed=run.config.seed)
    return dict(zip(manifest.ids, manifest.paths))


def confident_mistakes(oof: OutOfFold, classes: Sequence[str], n: int) -> list[Mistake]:
    """The ``n`` wrong predictions made with the highest probability, most confident first."""
    pred = oof.y_pred
    rows = np.arange(len(pred))
    p_pred = oof.proba[rows, pred]
    wrong = np.flatnonzero(pred != oof.y_true)
    order = wrong[np.argsort(-p_pred[wrong], kind="stable")][:max(n, 0)]
    return [Mistake(id=oof.ids[i], fold=int(oof.folds[i]), true=classes[oof.y_true[i]],
                    predicted=classes[pred[i]], p_predicted=float(p_pred[i]),
                    p_true=float(oof.proba[i, oof.y_true[i]])) for i in order]

"""A run packaged as a Kaggle Dataset folder: what a code competition's notebook needs, offline.

``build_package`` writes ``<cache>/kaggle-package/<slug>/<run id>/`` (built beside it, then renamed
into place, so an interrupted build leaves the previous folder or none) holding flat files, because
the client uploads the files of a folder, not its sub-folders:

    run.json, fold_<k>.keras, fold_<k>.json    the run record and each fold's model and result
    plugin.py                                  the competition's plugin file
    kaggle_kit-<version>-py3-none-any.whl     the kit itself (:mod:`kaggle_kit.kaggle.wheel`)
    package.json                               what is inside: slug, run id, TTA, the wheel's name
    dataset-metadata.json                      the dataset's id, title and licence, for the client

One dataset per competition, ``<user>/kk-<slug>``: each push is a new version of it. The size is
checked before anything is uploaded.

Example:
    >>> dataset_slug("cifar-10-mini")
    'kk-cifar-10-mini'
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError, SubmissionError
from kaggle_kit.kaggle.wheel import kit_wheel
from kaggle_kit.project import Project
from kaggle_kit.training.runs import RunRecord

__all__ = ["DATASET_LIMIT", "Package", "PACKAGE_FILE", "build_package", "dataset_slug", "human_bytes"]

DATASET_LIMIT = 100 * 10**9        # Kaggle's private-dataset quota per account (about 100 GB)
PACKAGE_FILE = "package.json"
METADATA = "dataset-metadata.json"


@dataclass(frozen=True, kw_only=True)
class Package:
    folder: Path
    dataset: str                   # <owner>/<slug>
    run_id: str
    tta: bool
    size: int                      # bytes to upload
    files: tuple[str, ...]


def dataset_slug(slug: str) -> str:
    """``kk-<slug>``, cut to Kaggle's 50 characters."""
    return f"kk-{slug}"[:50].rstrip("-")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def build_package(project: Project, competition: Competition, run: RunRecord, *, owner: str,
                  tta: bool | None = None, limit: int | None = None) -> Package:
    """The dataset folder of ``run``; raises before any upload when it is over ``limit`` bytes
    (default :data:`DATASET_LIMIT`, or ``$KAGGLE_KIT_DATASET_LIMIT``)."""
    if run.status != "complete" or not run.folds:
        raise KitError(f"{run.path}: run {run.run_id} is not complete ({run.status}); "
                       f"finish it with `kaggle-kit train --resume {run.run_id}`")
    limit = limit if limit is not None else int(os.environ.get("KAGGLE_KIT_DATASET_LIMIT") or DATASET_LIMIT)
    tta = run.config.tta if tta is None else tta
    plugin = Path(competition.source) if competition.source else None
    if plugin is None or not plugin.is_file():
        raise KitError(f"{competition.slug}: its plugin file is unknown ({competition.source or 'not loaded from a file'})")
    sources: dict[str, Path] = {"run.json": run.json_path, "plugin.py": plugin}
    for fold in run.folds:
        sources[f"fold_{fold.fold}.keras"] = run.fold_dir(fold.fold) / "best.keras"
        sources[f"fold_{fold.fold}.json"] = run.fold_dir(fold.fold) / "result.json"
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise KitError(f"run {run.run_id}: {', '.join(missing)} missing; train it again or pick another run")
    wheel = kit_wheel(project.cache)
    sources[wheel.name] = wheel
    size = sum(p.stat().st_size for p in sources.values())
    if size > limit:
        raise SubmissionError(f"run {run.run_id} packages to {human_bytes(size)}, over the dataset limit of "
                              f"{human_bytes(limit)}; nothing was uploaded")
    dataset = f"{owner}/{dataset_slug(competition.slug)}"
    folder = project.cache / "kaggle-package" / competition.slug / run.run_id
    staging = folder.with_name(f".{run.run_id}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, src in sources.items():
        shutil.copyfile(src, staging / name)
    (staging / PACKAGE_FILE).write_text(json.dumps(
        {"slug": competition.slug, "run_id": run.run_id, "tta": tta, "wheel": wheel.name,
         "folds": [f.fold for f in run.folds]}, indent=2) + "\n")
    (staging / METADATA).write_text(json.dumps(
        {"id": dataset, "title": f"kaggle-kit {competition.slug}"[:50], "licenses": [{"name": "CC0-1.0"}]},
        indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return Package(folder=folder, dataset=dataset, run_id=run.run_id, tta=tta, size=size,
                   files=tuple(sorted(p.name for p in folder.iterdir())))

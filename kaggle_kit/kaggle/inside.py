"""What the generated notebook runs on Kaggle: predict the test set from a packaged run.

``predict_package`` lays the package (:mod:`kaggle_kit.kaggle.package`) out as a kit project in a
scratch folder (the plugin in ``competitions/``, the run in ``checkpoints/<slug>/<run id>/``), finds
the competition's data where Kaggle mounts it (``/kaggle/input/<slug>``, or
``$KAGGLE_KIT_INPUT_ROOT/<slug>``), predicts with the run's fold ensemble and TTA, validates the CSV
and copies it to ``<working>/submission.csv``.

Example (a notebook, with the package attached as a dataset)::

    predict_package(Path("/kaggle/input/kk-cifar-10-mini"), Path("/kaggle/working"))

"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_kit.events import Report, quiet
from kaggle_kit.kaggle.package import PACKAGE_FILE
from kaggle_kit.project import Project, load_plugin
from kaggle_kit.training.runs import load_run

__all__ = ["Predicted", "predict_package", "unpack"]


@dataclass(frozen=True, kw_only=True)
class Predicted:
    path: Path                     # <working>/submission.csv
    rows: int
    seconds: float


def unpack(package: Path, root: Path) -> tuple[Project, Competition, dict]:
    """A kit project at ``root`` holding the packaged plugin and run; the packaged plugin, loaded (its own
    errors raise: a bundled plugin of the same slug never stands in for it); and the package's facts."""
    manifest_file = package / PACKAGE_FILE
    if not manifest_file.is_file():
        raise KitError(f"{package}: no {PACKAGE_FILE}; attach the dataset `kaggle-kit submit --notebook` pushed")
    facts = json.loads(manifest_file.read_text())
    slug, run_id = facts["slug"], facts["run_id"]
    (root / "competitions").mkdir(parents=True, exist_ok=True)
    plugin = root / "competitions" / f"{slug.replace('-', '_')}.py"
    shutil.copyfile(package / "plugin.py", plugin)
    run_dir = root / "checkpoints" / slug / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(package / "run.json", run_dir / "run.json")
    for k in facts["folds"]:
        (run_dir / f"fold_{k}").mkdir(exist_ok=True)
        shutil.copyfile(package / f"fold_{k}.keras", run_dir / f"fold_{k}" / "best.keras")
        shutil.copyfile(package / f"fold_{k}.json", run_dir / f"fold_{k}" / "result.json")
    return Project(root), load_plugin(plugin), facts


def predict_package(package: Path, working: Path, *, report: Report = quiet) -> Predicted:
    from kaggle_kit.prediction.predictor import make_submission

    started = time.perf_counter()
    project, competition, facts = unpack(Path(package), Path(tempfile.mkdtemp(prefix="kaggle-kit-")))
    data = project.data_root(competition.slug)
    if not data.is_dir():
        raise KitError(f"{data}: the competition's data is not attached; add {competition.slug} to the "
                       "notebook's competition sources")
    run = load_run(project, competition.slug, facts["run_id"])
    path = make_submission(project, competition, run, tta=bool(facts["tta"]), reuse=False, report=report)
    working = Path(working)
    working.mkdir(parents=True, exist_ok=True)
    out = working / "submission.csv"
    shutil.copyfile(path, out)
    rows = sum(1 for _ in out.open()) - 1
    return Predicted(path=out, rows=rows, seconds=time.perf_counter() - started)

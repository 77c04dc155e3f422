"""The notebook API: the whole loop in a few calls, with the same progress display as the CLI.

Every function finds the project from the current folder (or takes ``project=``), accepts a competition
as a slug or a :class:`~kaggle_kit.competition.Competition` (None: the project's default), and draws
progress with :class:`~kaggle_kit.progress.ProgressView` unless ``progress=False``; pass any callable
taking an event as ``progress`` to receive the typed events of :mod:`kaggle_kit.events` instead.
These functions sit at the top of the stack, just below the CLI, and only wire the stages together.

Example (a notebook in a project folder)::

    from kaggle_kit import fetch, train, predict, submit, status
    fetch("cifar-10-mini")
    run = train("cifar-10-mini", folds=2, head_epochs=3)
    print(run.cv, predict(run))
    submit(run, message="first try")
    print(status("cifar-10-mini", wait=True).submissions[0].info.public_score)
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Iterator

from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import KitError
from kaggle_kit.events import Report, quiet
from kaggle_kit.project import Project

__all__ = ["fetch", "train", "blend", "predict", "export", "submit", "status", "best_run", "list_runs", "load_run"]


def _project(project: Project | None) -> Project:
    return project if project is not None else Project.find()


def _competition(project: Project, competition: str | Competition | None) -> Competition:
    if isinstance(competition, Competition):
        return competition
    return project.competition(competition)


@contextlib.contextmanager
def _progress(progress: bool | Report) -> Iterator[Report]:
    """A ``report`` callable: the rich renderer (True), nothing (False), or the caller's own."""
    if progress is False:
        yield quiet
    elif progress is True:
        from kaggle_kit.progress import ProgressView

        with ProgressView() as view:
            yield view
    else:
        yield progress


def _run(project: Project, competition: Competition, run: Any | None):
    from kaggle_kit.training.runs import RunRecord, pick_run

    if isinstance(run, RunRecord):
        return run
    return pick_run(project, competition, run)


def _slug_of(run: Any | None) -> str | None:
    """The competition of a ``RunRecord`` (None for a run id or no run: the default competition)."""
    from kaggle_kit.training.runs import RunRecord

    return run.slug if isinstance(run, RunRecord) else None


def fetch(competition: str | None = None, *, project: Project | None = None, force: bool = False,
          files: list[str] | None = None):
    """Download and unpack a competition's data into ``data/<slug>`` (nothing to do when complete);
    with ``files``, only those data files (for an archive too large to fetch whole).

    Returns a :class:`~kaggle_kit.kaggle.fetch.FetchResult` (``action``, ``path``, ``files``).
    """
    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.fetch import fetch as fetch_data, fetch_files

    project = _project(project)
    slug = competition.slug if isinstance(competition, Competition) else (competition or project.default_slug())
    if not slug:
        raise KitError("no competition named and no default set: pass one, e.g. fetch('cifar-10')")
    if files:
        result = fetch_files(project, slug, list(files), client=KaggleClient(), force=force)
    else:
        result = fetch_data(project, slug, client=KaggleClient(), force=force)
    if project.default_slug() is None:
        project.set_default(slug)
    return result


def train(competition: str | Competition | None = None, config: TrainConfig | None = None, *,
          recipe: str | None = None, project: Project | None = None, resume: str | None = None,
          only_folds: list[int] | None = None, ray: str | None = None,
          progress: bool | Report = True, **options: Any):
    """Train a run: the plugin's defaults, then ``recipe``, then ``options`` (any ``TrainConfig`` field).
    ``budget="20m"`` plans the run to that time (docs/budget.md), keeping the other ``options`` given.

    ``config`` replaces all three. Returns the finished :class:`~kaggle_kit.training.runs.RunRecord`.
    ``only_folds`` (with ``resume``): just those folds, from 0; ``ray``: a Ray cluster's address
    (``"auto"``) to train the folds on (docs/scale-out.md).
    """
    from kaggle_kit.training.trainer import train as train_run

    project = _project(project)
    comp = _competition(project, competition)
    if config is None:
        config = comp.config(recipe, options)
        if "folds" in options and "holdout" not in options:
            config = dataclasses.replace(config, holdout=None)   # folds beat a plugin's default holdout
    elif recipe or options:
        raise KitError("pass either config= or recipe/options, not both")
    from kaggle_kit.training.budget import pinned

    keep = pinned(comp, recipe, options) if options or recipe else {}   # what a budget's plan keeps
    with _progress(progress) as report:
        if ray is not None:
            from kaggle_kit.training.ray_engine import train_ray

            return train_ray(project, comp, config, address=ray, resume=resume, folds=only_folds, report=report)
        return train_run(project, comp, config, resume=resume, only_folds=only_folds, report=report, keep=keep)


def blend(competition: str | Competition | None = None, runs: list[Any] | None = None, *, top: int | None = None,
          method: str = "auto", space: str = "auto", project: Project | None = None):
    """Blend finished runs (ids or records; None: the best ``top`` sharing folds) with weights fitted on
    their out-of-fold predictions; ``method``/``space`` as ``kaggle-kit blend``. Returns the saved
    :class:`~kaggle_kit.training.runs.BlendRecord`, which ``predict`` and ``submit`` take like a run."""
    from kaggle_kit.training.blend import METHODS, SPACES
    from kaggle_kit.training.blending import blend_runs

    project = _project(project)
    slug = competition if competition is not None else next((r.slug for r in runs or [] if hasattr(r, "slug")), None)
    comp = _competition(project, slug)
    return blend_runs(project, comp, runs, top=top, methods=METHODS if method == "auto" else (method,),
                      spaces=SPACES if space == "auto" else (space,)).record


def predict(run: Any | None = None, *, competition: str | Competition | None = None,
            project: Project | None = None, tta: bool | str | None = None, progress: bool | Report = True) -> Path:
    """Predict the test set with a run's fold ensemble; write and validate the submission CSV.

    ``run``: a ``RunRecord``, a run id, or None for the best run by CV. ``tta``: a TTA policy name
    (``none``, ``flip``, ``d8``, ``scale``, ...), True/False (mirrors / none), or None: the policy the
    run chose on its out-of-fold CV. Returns the CSV's path.
    """
    from kaggle_kit.prediction.predictor import make_submission

    project = _project(project)
    comp = _competition(project, competition if competition is not None else _slug_of(run))
    record = _run(project, comp, run)
    with _progress(progress) as report:
        return make_submission(project, comp, record, tta=tta, reuse=False, report=report)


def export(run: Any | None = None, *, format: str = "savedmodel", competition: str | Competition | None = None,
           project: Project | None = None, tta: bool | str | None = None, out: str | Path | None = None):
    """Write a run's fold ensemble as one model: ``format`` is savedmodel, keras, onnx or tflite.

    Float32 RGB 0-255 at the run's image size in, class probabilities out, equal to :func:`predict`'s
    (``tta``: a TTA policy name or True/False; None: the policy the run chose on its OOF).
    Returns an :class:`~kaggle_kit.prediction.export.Exported` (``path``, ``info_path``, ``classes``).
    """
    from kaggle_kit.prediction.export import export_run

    project = _project(project)
    comp = _competition(project, competition if competition is not None else _slug_of(run))
    record = _run(project, comp, run)
    return export_run(project, comp, record, fmt=format, tta=tta, out=Path(out) if out else None)


def submit(run: Any | None = None, *, competition: str | Competition | None = None,
           project: Project | None = None, message: str | None = None, csv: str | Path | None = None,
           dry_run: bool = False, notebook: bool = False, progress: bool | Report = True):
    """Upload a run's predictions (built if needed) and record the submission in the run.

    Returns a :class:`~kaggle_kit.kaggle.submit.SubmitResult` (``ref``, ``file``, ``message``). With
    ``notebook=True`` (a code competition) the run is packaged as a dataset and a notebook is pushed,
    run on Kaggle and submitted: a :class:`~kaggle_kit.kaggle.code_submit.NotebookSubmitResult`.
    """
    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.submit import submit_run

    project = _project(project)
    comp = _competition(project, competition if competition is not None else _slug_of(run))
    record = _run(project, comp, run)
    if notebook:
        from kaggle_kit.kaggle.code_submit import submit_notebook

        if csv is not None or dry_run:
            raise KitError("a notebook submission takes neither csv= nor dry_run=")
        with _progress(progress) as report:
            return submit_notebook(project, comp, record, client=KaggleClient(), message=message, report=report)
    return submit_run(project, comp, record, client=KaggleClient(), message=message, dry_run=dry_run,
                      csv=Path(csv) if csv else None)


def status(competition: str | Competition | None = None, *, project: Project | None = None, top: int = 10,
           wait: bool = False, timeout: float = 600.0):
    """My submissions and their scores, submissions left today and the leaderboard's top ``top``.

    ``wait``: poll until no submission is pending (at most ``timeout`` seconds).
    """
    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.status import competition_status, wait_for_scores

    project = _project(project)
    comp = _competition(project, competition)
    if wait:
        return wait_for_scores(project, comp.slug, client=KaggleClient(), top=top, timeout=timeout)
    return competition_status(project, comp.slug, client=KaggleClient(), top=top)


def best_run(competition: str | Competition | None = None, *, project: Project | None = None):
    """The finished run with the best CV score."""
    from kaggle_kit.training.runs import best_run as best

    project = _project(project)
    return best(project, _competition(project, competition))


def list_runs(competition: str | Competition | None = None, *, project: Project | None = None,
              complete_only: bool = True):
    """The competition's runs, best CV first."""
    from kaggle_kit.training.runs import list_runs as runs

    project = _project(project)
    return runs(project, _competition(project, competition), complete_only=complete_only)


def load_run(run_id: str, *, competition: str | Competition | None = None, project: Project | None = None):
    """One run by id."""
    from kaggle_kit.training.runs import load_run as load

    project = _project(project)
    return load(project, _competition(project, competition).slug, run_id)


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

__all__ = ["fetch", "train", "predict", "submit", "status", "best_run", "list_runs", "load_run"]


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


def fetch(competition: str | None = None, *, project: Project | None = None, force: bool = False):
    """Download and unpack a competition's data into ``data/<slug>`` (nothing to do when complete).

    Returns a :class:`~kaggle_kit.kaggle.fetch.FetchResult` (``action``, ``path``, ``files``).
    """
    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.fetch import fetch as fetch_data

    project = _project(project)
    slug = competition.slug if isinstance(competition, Competition) else (competition or project.default_slug())
    if not slug:
        raise KitError("no competition named and no default set: pass one, e.g. fetch('cifar-10')")
    result = fetch_data(project, slug, client=KaggleClient(), force=force)
    if project.default_slug() is None:
        project.set_default(slug)
    return result


def train(competition: str | Competition | None = None, config: TrainConfig | None = None, *,
          recipe: str | None = None, project: Project | None = None, resume: str | None = None,
          only_folds: list[int] | None = None, ray: str | None = None,
          progress: bool | Report = True, **options: Any):
    """Train a run: the plugin's defaults, then ``recipe``, then ``options`` (any ``TrainConfig`` field).

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
    with _progress(progress) as report:
        if ray is not None:
            from kaggle_kit.training.ray_engine import train_ray

            return train_ray(project, comp, config, address=ray, resume=resume, folds=only_folds, report=report)
        return train_run(project, comp, config, resume=resume, only_folds=only_folds, report=report)


def predict(run: Any | None = None, *, competition: str | Competition | None = None,
            project: Project | None = None, tta: bool | None = None, progress: bool | Report = True) -> Path:
    """Predict the test set with a run's fold ensemble; write and validate the submission CSV.

    ``run``: a ``RunRecord``, a run id, or None for the best run by CV. Returns the CSV's path.
    """
    from kaggle_kit.prediction.predictor import make_submission

    project = _project(project)
    comp = _competition(project, competition if competition is not None else _slug_of(run))
    record = _run(project, comp, run)
    with _progress(progress) as report:
        return make_submission(project, comp, record, tta=tta, reuse=False, report=report)


def submit(run: Any | None = None, *, competition: str | Competition | None = None,
           project: Project | None = None, message: str | None = None, csv: str | Path | None = None,
           dry_run: bool = False):
    """Upload a run's predictions (built if needed) and record the submission in the run.

    Returns a :class:`~kaggle_kit.kaggle.submit.SubmitResult` (``ref``, ``file``, ``message``).
    """
    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.submit import submit_run

    project = _project(project)
    comp = _competition(project, competition if competition is not None else _slug_of(run))
    record = _run(project, comp, run)
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


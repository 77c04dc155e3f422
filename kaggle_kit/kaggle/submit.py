"""Submit a run's predictions to Kaggle and record the submission in the run.

``submit_run`` builds the run's CSV with the predictor unless it exists (or uses the CSV given),
validates it, and (unless ``dry_run``) uploads it through :class:`~kaggle_kit.kaggle.client.KaggleClient`,
which checks the slug and today's allowance before uploading. The reference Kaggle returns is
stored in the run record (``run.json`` -> ``submissions``) with the file, message and time.

Example:
    >>> import tempfile
    >>> from kaggle_kit.project import Project
    >>> from kaggle_kit.training.runs import RunRecord
    >>> project = Project(Path(tempfile.mkdtemp()))
    >>> run = RunRecord.create(project, "cifar-10", backbone="simple_cnn", config={"backbone": "simple_cnn"})
    >>> run.cv, run.metric = 0.8125, "accuracy"
    >>> default_message(run).split(" ", 1)[1]
    'simple_cnn CV accuracy 0.8125'
    >>> needs_notebook_message("cifar-10-mini", code=True).split(":")[0]
    'cifar-10-mini is a code competition'
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kaggle_kit.competition import Competition
from kaggle_kit.errors import SubmissionError
from kaggle_kit.project import Project
from kaggle_kit.training.runs import RunRecord
from kaggle_kit.prediction.submission import expected_ids, read_as_proba, validate_frame

__all__ = ["Submitter", "SubmitResult", "default_message", "needs_notebook_message", "validate_csv", "submit_run"]


class Submitter(Protocol):
    def submit(self, slug: str, csv_path: Path, message: str): ...


@dataclass(frozen=True, kw_only=True)
class SubmitResult:
    run_id: str
    file: Path
    message: str
    ref: int | None          # None for a dry run

    @property
    def dry_run(self) -> bool:
        return self.ref is None


def default_message(run: RunRecord) -> str:
    """``<run id> <backbone> CV <metric> <score>``: what a submission came from, on the leaderboard page."""
    cv = "n/a" if run.cv is None else f"{run.cv:.4f}"
    return f"{run.run_id} {run.backbone} CV {run.metric or 'score'} {cv}"


def needs_notebook_message(slug: str, *, code: bool) -> str:
    """The one line that says which path a competition needs (``code``: it is a code competition)."""
    if code:
        return (f"{slug} is a code competition: Kaggle runs a notebook, a CSV cannot be uploaded; "
                f"submit with `kaggle-kit submit {slug} --best --notebook`")
    return (f"{slug} takes a CSV upload, not a notebook (its plugin does not set code_competition=True); "
            f"submit without --notebook")


def validate_csv(project: Project, competition: Competition, path: Path) -> None:
    """Raise :class:`SubmissionError` unless ``path`` is a complete, valid submission for ``competition``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: submission file not found")
    ids = expected_ids(competition, project.data_root(competition.slug), read_as_proba(competition, path)[0])
    frame = pd.read_csv(path, dtype={competition.submission.id_column: str}, keep_default_na=False)
    validate_frame(competition, frame, ids, where=str(path))


def submit_run(project: Project, competition: Competition, run: RunRecord, *, client: Submitter,
               message: str | None = None, dry_run: bool = False, csv: Path | None = None,
               tta: bool | None = None) -> SubmitResult:
    """Build (or take ``csv``), validate and upload the run's submission; record its reference."""
    if competition.code_competition:
        raise SubmissionError(needs_notebook_message(competition.slug, code=True))
    if csv is None:
        from kaggle_kit.prediction.predictor import make_submission

        path = make_submission(project, competition, run, tta=tta)
    else:
        path = Path(csv)
    validate_csv(project, competition, path)
    message = message or default_message(run)
    if dry_run:
        return SubmitResult(run_id=run.run_id, file=path, message=message, ref=None)
    ref = client.submit(competition.slug, path, message)
    run.add_submission(ref=ref.ref, file=str(path), message=message)
    return SubmitResult(run_id=run.run_id, file=path, message=message, ref=ref.ref)

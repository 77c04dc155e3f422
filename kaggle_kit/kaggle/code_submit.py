"""Submit a run to a code competition: package it, push the inference notebook, wait for it, submit that version.

``submit_notebook`` is the path ``kaggle-kit submit --notebook`` takes:

1. estimate the notebook's run time from a prediction of the local test set, when the data is here;
2. package the run (:mod:`kaggle_kit.kaggle.package`; the size is checked before any upload) and push
   it as a new version of the dataset ``<user>/kk-<slug>`` (created on the first push);
3. generate the notebook (:mod:`kaggle_kit.kaggle.notebook`) and push it with the internet off;
4. poll its run (``NotebookStatus`` events); when it fails, download its log and raise
   :class:`~kaggle_kit.errors.NotebookFailed` with the error line and the log's tail; nothing is recorded;
5. submit the version (``competitions submit -k <user>/<notebook> -v <n>``) and record the reference
   in the run, like a CSV submission, so ``kaggle-kit status`` shows it against the run.

A plugin says whether its competition is a code competition (``code_competition=True``); the CSV
path refuses one, and this path refuses the others, each in one line
(:func:`~kaggle_kit.kaggle.submit.needs_notebook_message`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from kaggle_kit.competition import Competition
from kaggle_kit.errors import KaggleError, KitError, NotebookFailed
from kaggle_kit.events import NotebookStatus, Report, Stage, Warned, quiet
from kaggle_kit.kaggle.client import KaggleClient
from kaggle_kit.kaggle.kernels import KaggleCode
from kaggle_kit.kaggle.notebook import inference_notebook, write_notebook
from kaggle_kit.kaggle.package import Package, build_package, human_bytes
from kaggle_kit.kaggle.submit import default_message, needs_notebook_message
from kaggle_kit.project import Project
from kaggle_kit.training.runs import RunRecord

__all__ = ["NotebookSubmitResult", "estimate_seconds", "submit_notebook"]

LOG_TAIL = 20
OUTPUT = "submission.csv"


@dataclass(frozen=True, kw_only=True)
class NotebookSubmitResult:
    run_id: str
    package: Package
    kernel: str                    # <owner>/<slug>
    version: int
    ref: int
    message: str
    seconds: float                 # the notebook's run, pushed to finished


def estimate_seconds(project: Project, competition: Competition, run: RunRecord, tta: bool) -> tuple[float, int] | None:
    """Seconds to predict the local test set, and its size; None without local test data."""
    from kaggle_kit.prediction.predictor import predict_test

    if not project.data_root(competition.slug).is_dir():
        return None
    started = time.perf_counter()
    ids, _, _ = predict_test(project, competition, run, tta=tta)
    return time.perf_counter() - started, len(ids)


def submit_notebook(project: Project, competition: Competition, run: RunRecord, *, client: KaggleClient,
                    message: str | None = None, tta: bool | None = None, accelerator: str = "none",
                    report: Report = quiet, poll: float = 5.0, timeout: float | None = None,
                    limit: int | None = None, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> NotebookSubmitResult:
    """Package, push, run and submit ``run`` as a notebook; ``timeout`` defaults to the competition's limit."""
    if not competition.code_competition:
        raise KitError(needs_notebook_message(competition.slug, code=False))
    tta = run.config.tta if tta is None else tta
    hours = competition.notebook_hours
    code = KaggleCode(client)
    owner = code.user()
    package = build_package(project, competition, run, owner=owner, tta=tta, limit=limit)
    report(Stage(message=f"packaged run {run.run_id}: {len(package.files)} files, {human_bytes(package.size)}"))
    estimate = ""
    timed = estimate_seconds(project, competition, run, tta)
    if timed is not None:
        seconds, n = timed
        estimate = f"{seconds:.0f} s for {n} test images here ({1000 * seconds / max(n, 1):.1f} ms/image)"
        report(Stage(message=f"estimated run time: {estimate}; the limit is {hours:g} h"))
        if seconds > hours * 3600:
            report(Warned(message=f"the local prediction alone took {seconds:.0f} s, over the {hours:g} h limit"))
    url = code.push_dataset(package.folder, ref=package.dataset, notes=f"kaggle-kit run {run.run_id}")
    report(Stage(message=f"uploaded dataset {package.dataset} ({url})"))
    _wait(lambda: code.dataset_ready(package.dataset), poll=poll, timeout=600.0, sleep=sleep, clock=clock,
          what=f"dataset {package.dataset} is not ready")
    summary = f"{run.backbone}, CV {run.metric or 'score'} {run.cv:.4f}" if run.cv is not None else run.backbone
    nb = inference_notebook(slug=competition.slug, dataset=package.dataset, wheel=_wheel(package), run_id=run.run_id,
                            summary=summary, hours=hours, estimate=estimate)
    folder = write_notebook(package.folder.with_name(f"{run.run_id}.notebook"), nb, owner=owner,
                            slug=competition.slug, dataset=package.dataset, accelerator=accelerator)
    version = code.push_notebook(folder.folder, timeout_s=int(hours * 3600))
    report(Stage(message=f"pushed notebook {folder.kernel} version {version} (internet off)"))
    started = clock()
    limit_s = timeout if timeout is not None else hours * 3600 + 600
    while True:
        state = code.status(folder.kernel, version)
        report(NotebookStatus(notebook=folder.kernel, version=version, status=state.status, seconds=clock() - started))
        if state.finished:
            break
        if clock() - started > limit_s:
            raise KaggleError(f"notebook {folder.kernel} version {version} is still {state.status} after "
                              f"{limit_s:.0f} s; nothing was submitted (see `kaggle kernels status {folder.kernel}`)")
        sleep(poll)
    ran = clock() - started
    output = code.output(folder.kernel, version, package.folder.with_name(f"{run.run_id}.output-v{version}"))
    if state.status != "complete":
        said = state.failure or "no reason given"
        raise NotebookFailed(f"notebook {folder.kernel} version {version} failed on Kaggle: {said}; nothing was submitted",
                             log_tail=output.log[-LOG_TAIL:])
    if OUTPUT not in {p.name for p in output.files}:
        raise NotebookFailed(f"notebook {folder.kernel} version {version} wrote no {OUTPUT}; nothing was submitted",
                             log_tail=output.log[-LOG_TAIL:])
    message = message or default_message(run)
    ref = code.submit(competition.slug, kernel=folder.kernel, version=version, file_name=OUTPUT, message=message)
    run.add_submission(ref=ref.ref, file=f"notebook {folder.kernel} version {version}", message=message)
    return NotebookSubmitResult(run_id=run.run_id, package=package, kernel=folder.kernel, version=version,
                                ref=ref.ref, message=message, seconds=ran)


def _wheel(package: Package) -> str:
    return next(name for name in package.files if name.endswith(".whl"))


def _wait(ready: Callable[[], bool], *, poll: float, timeout: float, sleep: Callable[[float], None],
          clock: Callable[[], float], what: str) -> None:
    deadline = clock() + timeout
    while not ready():
        if clock() > deadline:
            raise KaggleError(f"{what} after {timeout:.0f} s; nothing was submitted")
        sleep(poll)

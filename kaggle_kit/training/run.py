"""The life of one training run: create or resume it, record its data and its folds, complete it.

``train`` (one process) and ``train_parallel`` (one process per fold worker) share this object, so
a run is started, resumed, recorded, scored and marked interrupted or failed the same way whoever
trains its folds. The record itself (``run.json``) is :class:`~kaggle_kit.training.runs.RunRecord`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from kaggle_kit.competition import Competition, Submission
    >>> from kaggle_kit.layouts import ClassFolders
    >>> from kaggle_kit.project import Project
    >>> project = Project(Path(tempfile.mkdtemp()))
    >>> pets = Competition(slug="pets", classes=("cat", "dog"), metric="accuracy", train=ClassFolders(),
    ...                    submission=Submission())
    >>> run = Run.create(project, pets, TrainConfig(backbone="simple_cnn", folds=2))
    >>> run.attach(DataReady(splits=2, train_size=40, fingerprint="abc"))
    >>> run.todo(), run.started().resumed
    ([0, 1], False)
    >>> try:
    ...     with run.recording():
    ...         raise KeyboardInterrupt            # Ctrl-C: the record says so, the work done stays
    ... except KeyboardInterrupt:
    ...     pass
    >>> again = Run.resume(project, pets, run.record.run_id)
    >>> again.config.folds, again.record.n_splits, load_run(project, "pets", run.record.run_id).status
    (2, 2, 'interrupted')
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write
from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig
from kaggle_kit.data.manifest import Manifest
from kaggle_kit.errors import KitError
from kaggle_kit.events import DataReady, RunStarted
from kaggle_kit.model.backbones import get_backbone
from kaggle_kit.project import Project
from kaggle_kit.training.cv import CVInterval, cv_interval
from kaggle_kit.training.locks import FoldBusy, run_lock
from kaggle_kit.training.tta import choose_tta
from kaggle_kit.training.runs import FoldResult, RunRecord, library_versions, load_run

__all__ = ["Run", "write_oof"]

Splits = Sequence[tuple[np.ndarray, np.ndarray]]


class Run:
    """One run being trained: its record, the config it trains with and the clock of its time spent."""

    def __init__(self, project: Project, competition: Competition, record: RunRecord, *, resumed: bool) -> None:
        self.project, self.competition, self.record, self.resumed = project, competition, record, resumed
        self._start = time.perf_counter() - record.seconds

    @property
    def config(self) -> TrainConfig:
        return self.record.config

    # -- starting ------------------------------------------------------------------------------
    @classmethod
    def create(cls, project: Project, competition: Competition, config: TrainConfig) -> "Run":
        """A new run of ``config``, status running (a misspelt name fails now, before any folder)."""
        config.validate()
        record = RunRecord.create(project, competition.slug, backbone=get_backbone(config.backbone).short_name,
                                  config=config,
                                  classes=list(competition.classes), metric=competition.metric,
                                  direction=competition.scorer.direction, versions=library_versions())
        return cls(project, competition, record, resumed=False)

    @classmethod
    def resume(cls, project: Project, competition: Competition, run_id: str) -> "Run":
        """The unfinished run ``run_id``, trained again with the config it was created with."""
        record = load_run(project, competition.slug, run_id)
        if record.status == "complete":
            raise KitError(f"{record.path}: run {record.run_id} is already complete")
        record.status = "running"          # not "interrupted" or "failed" while it trains again
        return cls(project, competition, record, resumed=True)

    @classmethod
    def open(cls, project: Project, competition: Competition, config: TrainConfig,
             resume: str | None = None) -> "Run":
        """:meth:`resume` run ``resume`` if given (``config`` is then the run's own), else :meth:`create`."""
        return cls.resume(project, competition, resume) if resume else cls.create(project, competition, config)

    def started(self) -> RunStarted:
        """The event that announces this run."""
        return RunStarted(run_id=self.record.run_id, path=str(self.record.path), resumed=self.resumed)

    # -- its data and folds --------------------------------------------------------------------
    def check_data(self, fingerprint: str) -> None:
        """A resumed run must train on the images it started with."""
        if self.record.fingerprint and self.record.fingerprint != fingerprint:
            raise KitError(f"{self.record.path}: the training images changed since run {self.record.run_id} "
                           f"started; start a new run instead of resuming")

    def attach(self, data: DataReady) -> None:
        """Record what the run trains on (not saved yet: :meth:`save`)."""
        rec = self.record
        rec.n_splits, rec.train_size = data.splits, data.train_size
        rec.excluded, rec.warnings = list(data.excluded), list(data.warnings)
        rec.fingerprint = rec.fingerprint or data.fingerprint

    def todo(self, folds: Iterable[int] | None = None) -> list[int]:
        """The folds (all of them, or of ``folds``) not finished yet."""
        return [k for k in (range(self.record.n_splits) if folds is None else folds) if not self.record.fold_done(k)]

    def add_fold(self, result: FoldResult, *, summary: bool = True) -> None:
        """Record a finished fold; with ``summary`` also in ``run.json`` (a fold worker leaves that
        file to its parent, the only process that writes it)."""
        self.record.add_fold(result)
        if summary:
            self.save()

    # -- the end -------------------------------------------------------------------------------
    def complete(self, manifest: Manifest, splits: Splits, groups: Sequence[str] | None = None) -> RunRecord:
        """Score the out-of-fold predictions (the CV, with its interval over ``groups`` when the folds
        were grouped, else over images), write ``oof.csv``, mark the run complete."""
        with run_lock(self.record.path):
            self.record.refresh_folds()
            missing = self.todo(range(len(splits)))
            if missing:
                raise KitError(f"{self.record.path}: fold(s) {', '.join(str(k + 1) for k in missing)} not trained; "
                               f"cannot complete run {self.record.run_id}")
            self._complete(manifest, splits, groups)
        return self.record

    def complete_if_done(self, manifest: Manifest, splits: Splits, groups: Sequence[str] | None = None) -> bool:
        """Complete the run if every fold is in (whoever trained them); True if it is complete now.
        Run under ``run.lock``, so of two processes landing the last folds at once one completes it."""
        with run_lock(self.record.path):
            on_disk = RunRecord.load(self.record.path)
            if on_disk.status == "complete":
                self.record = on_disk
                return True
            self.record.refresh_folds()
            if self.todo(range(len(splits))):
                return False
            self._complete(manifest, splits, groups)
            return True

    def _complete(self, manifest: Manifest, splits: Splits, groups: Sequence[str] | None) -> None:
        self.record.cv_interval = write_oof(self.record, self.competition, manifest, splits, groups)
        self.record.cv = self.record.cv_interval.score
        if self.config.tta:
            self._choose_tta(manifest, splits, groups)
        self.record.status = "complete"
        self._store()

    def _choose_tta(self, manifest: Manifest, splits: Splits, groups: Sequence[str] | None) -> None:
        """Score each TTA policy on the out-of-fold predictions; record them and the choice
        (:mod:`kaggle_kit.training.tta`); the chosen policy's OOF goes to ``oof_tta_<name>.csv``."""
        idx = np.concatenate([np.asarray(va) for _, va in splits])
        choice = choose_tta(self.competition.scorer, self.competition.symmetries,
                            [self.record.fold_dir(k) for k in range(len(splits))], np.asarray(manifest.labels)[idx],
                            None if groups is None else [groups[i] for i in idx])
        rec = self.record
        rec.tta, rec.tta_cv, rec.tta_note = choice.chosen, choice.scores, choice.note
        if choice.chosen != "none":
            write_oof(rec, self.competition, manifest, splits, groups, proba=choice.proba[choice.chosen],
                      name=f"oof_tta_{choice.chosen}.csv")

    def save(self) -> None:
        """``run.json``, with the time spent so far (re-read and merged under ``run.lock``: see :meth:`_store`)."""
        with run_lock(self.record.path):
            self._store()

    def _store(self) -> None:
        """Write ``run.json`` (``run.lock`` held). Another process (a machine training other folds)
        may have written it since: a run it completed stays complete, the longer time spent stays."""
        try:
            on_disk = RunRecord.load(self.record.path)
        except KitError:
            on_disk = None
        self.record.seconds = round(time.perf_counter() - self._start, 1)
        if on_disk is not None:
            if on_disk.status == "complete" and self.record.status != "complete":
                self.record = on_disk
                return
            self.record.seconds = max(self.record.seconds, on_disk.seconds)
            self.record.submissions = on_disk.submissions or self.record.submissions
        self.record.save()

    @contextmanager
    def recording(self) -> Iterator["Run"]:
        """Ctrl-C marks the run interrupted, a :class:`KitError` failed (both re-raised). Only the
        process that owns the run records it: a fold worker's failure is its parent's to record."""
        try:
            yield self
        except FoldBusy:                   # another process trains that fold: the run is not failed
            raise
        except KeyboardInterrupt:
            self.record.status = "interrupted"
            self.save()
            raise
        except KitError:
            self.record.status = "failed"
            try:
                self.save()
            except KitError:               # e.g. the disk is still full: the first error is the one to show
                pass
            raise


def write_oof(record: RunRecord, competition: Competition, manifest: Manifest, splits: Splits,
              groups: Sequence[str] | None = None, *, proba: Sequence[np.ndarray] | None = None,
              name: str = "oof.csv") -> CVInterval:
    """Assemble the folds' out-of-fold predictions (``fold_<k>/oof.npy``, or ``proba[k]``) into
    ``name`` (with each image's ``group`` when the folds were grouped); returns their score, the
    run's CV, with its bootstrap interval."""
    import pandas as pd

    rows, idx_all, p_all = [], [], []
    for k, (_, va) in enumerate(splits):
        proba_k = np.load(record.fold_dir(k) / "oof.npy") if proba is None else proba[k]
        for i, p in zip(va, proba_k):
            rows.append({"id": manifest.ids[i], "fold": k, "label": competition.classes[manifest.labels[i]],
                         **({} if groups is None else {"group": groups[i]}),
                         **{c: float(v) for c, v in zip(competition.classes, p)}})
        idx_all.append(np.asarray(va))
        p_all.append(proba_k)
    idx = np.concatenate(idx_all)
    interval = cv_interval(competition.scorer, np.asarray(manifest.labels)[idx], np.concatenate(p_all),
                           None if groups is None else [groups[i] for i in idx])
    frame = pd.DataFrame(rows)
    atomic_write(record.path / name, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6f"))
    return interval

"""``kaggle-kit blend``: pick the member runs, check they can be blended, fit, save the blend record.

Members are named runs, or the best ``top`` finished runs (not blends) that share the best run's
folds; a run with other folds is left out and said so (``BlendResult.skipped``). A named run of
another competition, with other classes or with other folds is a one-line :class:`KitError` saying
which and why. The record is ``checkpoints/<slug>/blend-<stamp>-<hex>/blend.json`` with its nested
out-of-fold blend in ``oof.csv`` beside it (so ``runs``, ``--best``, the report and the paired lead
read a blend as they read a run).

Example (a notebook)::

    from kaggle_kit.project import Project
    project = Project.find(); comp = project.competition("cifar-10")
    result = blend_runs(project, comp, top=3)
    print(result.record.run_id, result.record.weights, result.record.cv_interval.text())
"""
from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_kit.project import Project
from kaggle_kit.training.blend import METHODS, SPACES, align_oof, fit_blend, folds_fingerprint
from kaggle_kit.training.cv import OutOfFold, cv_interval, load_oof
from kaggle_kit.training.runs import BlendRecord, RunRecord, library_versions, list_runs

__all__ = ["BlendResult", "blend_runs", "member_oof", "DEFAULT_TOP"]

DEFAULT_TOP = 5


@dataclass(frozen=True, kw_only=True)
class BlendResult:
    """The saved blend and the runs left out of it (``run id -> why``)."""

    record: BlendRecord
    skipped: dict[str, str] = field(default_factory=dict)


def _named(project: Project, competition: Competition, run: str | RunRecord) -> RunRecord:
    """A run of ``competition`` by id (or as given); a run of another competition says whose it is."""
    if isinstance(run, RunRecord):
        record = run
    else:
        path = project.checkpoints / competition.slug / run
        if not (path / RunRecord.FILE).is_file() and not (path / BlendRecord.FILE).is_file():
            owners = sorted(p.parent.parent.name for p in project.checkpoints.glob(f"*/{run}/{RunRecord.FILE}"))
            if owners:
                raise KitError(f"{run} is a run of {owners[0]}, not of {competition.slug}: a blend takes runs "
                               f"of one competition")
            raise KitError(f"{project.checkpoints / competition.slug}: no run {run} of {competition.slug} "
                           f"(see `kaggle-kit runs {competition.slug}`)")
        record = RunRecord.load(path)
    if record.slug != competition.slug:
        raise KitError(f"{record.run_id} is a run of {record.slug}, not of {competition.slug}: a blend takes runs "
                       f"of one competition")
    if record.is_blend:
        raise KitError(f"{record.run_id} is a blend: blend its member runs instead ({', '.join(record.members)})")
    if record.status != "complete":
        raise KitError(f"{record.path}: run {record.run_id} is not complete ({record.status}); only finished "
                       f"runs blend")
    if list(record.classes) != list(competition.classes):
        raise KitError(f"{record.run_id} was trained on classes {', '.join(record.classes)}, but {competition.slug} "
                       f"has {', '.join(competition.classes)}: its probabilities cannot be blended")
    return record


def member_oof(run: RunRecord) -> OutOfFold:
    """A member's out-of-fold predictions (a run without them cannot be blended)."""
    oof = load_oof(run.path / "oof.csv", run.classes)
    if oof is None or oof.folds is None:
        raise KitError(f"{run.path / 'oof.csv'}: run {run.run_id} has no out-of-fold predictions to blend on")
    return oof


def _members(project: Project, competition: Competition, runs: Sequence[str | RunRecord] | None,
             top: int | None) -> tuple[list[RunRecord], list[OutOfFold], dict[str, str]]:
    if runs:
        records = [_named(project, competition, r) for r in runs]
        if len({r.run_id for r in records}) != len(records):
            raise KitError("a run is named twice: name each member once")
        return records, [member_oof(r) for r in records], {}
    candidates = [r for r in list_runs(project, competition, complete_only=True) if not r.is_blend and r.cv is not None]
    if not candidates:
        raise KitError(f"{project.checkpoints / competition.slug}: no finished run of {competition.slug} to blend")
    records, oofs, skipped = [], [], {}
    want = top or DEFAULT_TOP
    for r in candidates:
        if len(records) == want:
            break
        try:
            oof = member_oof(r)
        except KitError as e:
            skipped[r.run_id] = str(e)
            continue
        if oofs and folds_fingerprint(oof) != folds_fingerprint(oofs[0]):
            skipped[r.run_id] = f"other folds than {records[0].run_id}"
            continue
        records.append(r)
        oofs.append(oof)
    return records, oofs, skipped


def _write_oof(record: BlendRecord, competition: Competition, oof: OutOfFold, proba: np.ndarray) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    grouped = oof.groups is not None
    writer.writerow(["id", "fold", "label", *(["group"] if grouped else []), *competition.classes])
    for k, i in enumerate(oof.ids):
        writer.writerow([i, int(oof.folds[k]), competition.classes[oof.y_true[k]],
                         *([oof.groups[k]] if grouped else []), *(f"{v:.6f}" for v in proba[k])])
    atomic_write_text(record.path / "oof.csv", buf.getvalue())


def _new_folder(project: Project, slug: str):
    base = project.checkpoints / slug
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    while True:
        path = base / f"blend-{stamp}-{secrets.token_hex(2)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def blend_runs(project: Project, competition: Competition, runs: Sequence[str | RunRecord] | None = None, *,
               top: int | None = None, methods: Sequence[str] = METHODS,
               spaces: Sequence[str] = SPACES) -> BlendResult:
    """Blend ``runs`` (ids or records), else the best ``top`` runs sharing the best run's folds; save
    and return the record. ``methods``/``spaces``: the candidates tried (see :mod:`.blend`)."""
    if top is not None and top < 2:
        raise KitError(f"--top must be at least 2 (a blend needs two runs), not {top}")
    records, oofs, skipped = _members(project, competition, runs, top)
    if len(records) < 2:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise KitError(f"a blend needs at least two runs of {competition.slug} that share their folds; found "
                       f"{len(records)}" + (f" (left out: {why})" if why else ""))
    names = [r.run_id for r in records]
    aligned = align_oof(names, oofs)
    first = aligned[0]
    metric = competition.scorer
    fit = fit_blend(metric, first.y_true, [o.proba for o in aligned], first.folds, ids=first.ids,
                    groups=first.groups, methods=methods, spaces=spaces)
    singles = {n: cv_interval(metric, first.y_true, o.proba, first.groups, resamples=1).score
               for n, o in zip(names, aligned)}
    path = _new_folder(project, competition.slug)
    record = BlendRecord(run_id=path.name, slug=competition.slug, path=path, status="complete",
                         created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         classes=list(competition.classes), metric=competition.metric, direction=metric.direction,
                         n_splits=max(r.n_splits for r in records), cv=fit.cv.score, cv_interval=fit.cv,
                         train_size=len(first.ids), versions=library_versions(), members=names,
                         weights=list(fit.weights), method=fit.method, space=fit.space,
                         folds_fingerprint=folds_fingerprint(first),
                         candidates=[{"method": c.method, "space": c.space, **c.cv.to_dict()} for c in fit.candidates],
                         singles=singles, fold_weights=[list(w) for w in fit.fold_weights])
    record.config.tta = any(r.config.tta for r in records)
    _write_oof(record, competition, first, fit.oof)
    record.save()
    return BlendResult(record=record, skipped=skipped)

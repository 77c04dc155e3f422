"""The trainer: k-fold (or holdout) fine-tuning in two phases, recorded so it can be resumed.

:func:`train` opens a :class:`~kaggle_kit.training.run.Run` (new, or ``resume``), :func:`prepare`s
what every fold shares (manifest, decoded images, splits, cached backbone features), trains each
unfinished fold (:mod:`kaggle_kit.training.phases`) and completes the run: the out-of-fold
predictions give its CV score. ``--parallel-folds`` workers and Ray tasks run :func:`train_folds` on
their share; ``--resume RUN --only-folds 0,2`` does too, from any machine that sees the run folder, and
completes the run when its last fold lands. Each fold is trained under its lock file
(:mod:`kaggle_kit.training.locks`): the same fold started twice is refused.

Example (a notebook)::

    from kaggle_kit.project import Project
    from kaggle_kit.progress import ProgressView
    from kaggle_kit.training.trainer import train
    project = Project.find()
    comp = project.competition("cifar-10")
    with ProgressView() as view:
        run = train(project, comp, comp.config("fast", {"folds": 2, "limit": 400}), report=view)
    run.cv

"""
from __future__ import annotations

import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from kaggle_kit import interrupt
from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig
from kaggle_kit.data.cache import Cache
from kaggle_kit.data.audit_record import audit_warnings
from kaggle_kit.data.manifest import Manifest, build_manifest
from kaggle_kit.errors import KitError
from kaggle_kit.events import DataReady, FoldDone, FoldSkipped, Report, Stage, Warned, quiet, ticker
from kaggle_kit.model.features import backbone_features, backbone_outputs, features_from_activations, pretrained
from kaggle_kit.model.similar import copy_groups
from kaggle_kit.project import Project
from kaggle_kit.training.folds import make_splits
from kaggle_kit.training.locks import Holder, fold_lock
from kaggle_kit.training.phases import train_fold
from kaggle_kit.training.planner import TimeBox
from kaggle_kit.training.run import Run
from kaggle_kit.training.runs import RunRecord
from kaggle_kit.training.tta import head_keys
from kaggle_kit.symmetry import get_symmetry

__all__ = ["Prepared", "train", "train_folds", "prepare", "plan_data", "group_labels", "head_only"]


@dataclass
class Prepared:
    """What every fold shares: the manifest, the splits, the decoded-image cache, the features."""

    manifest: Manifest
    splits: list
    images: Any = None              # None from :func:`plan_data` (no images decoded)
    features: Any = None
    activations: Any = None         # frozen-layer outputs for phase 2 with ``finetune_from``
    warnings: list[str] = field(default_factory=list)
    groups: list[str] | None = None  # the groups the splits kept together (None: split by image)
    activation_views: tuple[str, ...] = ("id",)   # the symmetry views cached as activations, in record order
    tta_features: Any = None        # head-only runs: features of the TTA view keys (training/tta.py head_keys)

    def ready(self) -> DataReady:
        """The summary a run records (and a ``--parallel-folds`` prepare step sends its parent)."""
        m = self.manifest
        return DataReady(splits=len(self.splits), train_size=len(m), fingerprint=m.fingerprint,
                         excluded=[{"path": e.path, "reason": e.reason} for e in m.excluded],
                         warnings=list(self.warnings))


def train(project: Project, competition: Competition, config: TrainConfig, *, resume: str | None = None,
          only_folds: Sequence[int] | None = None, report: Report = quiet, keep: Mapping[str, Any] = {},
          started: float | None = None) -> RunRecord:
    """Train a new run of ``config`` (or the unfinished run ``resume``, with its own config) and
    return its completed record; Ctrl-C and kills keep finished work (``resume`` goes on from it).
    With ``only_folds`` (needs ``resume``) just those folds: see :func:`train_folds` ``complete=True``.

    With ``config.budget`` a new run is planned first (:func:`~kaggle_kit.training.budget.plan_budget`:
    ``keep`` holds the planned options the user set, ``started`` when the clock started, default now)
    and trains to the budget's deadline; a resumed one trains to the budget it has left."""
    if only_folds is not None:
        if not resume:
            raise KitError("--only-folds trains folds of an existing run: give it with --resume RUN_ID")
        return train_folds(project, competition, resume, only_folds, complete=True, report=report)
    started = time.time() if started is None else started
    timebox = None
    plan = None
    if config.budget and not resume:
        from kaggle_kit.training.budget import plan_budget

        config, plan, timebox = plan_budget(project, competition, config, keep=keep, started=started, report=report)
    run = Run.open(project, competition, config, resume)
    if plan is not None:
        run.record.plan = plan.to_dict()
        run.record.plan["epoch_s"] = {str(k): round(v, 2) for k, v in timebox.epoch_s.items()}
    elif run.record.plan:        # resumed: the time the budget has left after the time already spent
        spent = run.record.seconds + (time.time() - started)
        timebox = TimeBox(deadline=time.time() + max(0.0, run.record.plan["budget_s"] - spent),
                          epoch_s={int(k): v for k, v in run.record.plan.get("epoch_s", {}).items()})
    report(run.started())
    with run.recording():
        prepared = prepare(project, competition, run.config, report)
        run.check_data(prepared.manifest.fingerprint)
        run.attach(prepared.ready())
        run.save()
        _train_each(project, competition, run, prepared, range(len(prepared.splits)), report, timebox=timebox)
        return run.complete(prepared.manifest, prepared.splits, prepared.groups)


def train_folds(project: Project, competition: Competition, run_id: str, folds: Sequence[int], *,
                complete: bool = False, owner: str = "", report: Report = quiet) -> RunRecord:
    """Train just ``folds`` (numbered as the ``fold_<k>`` folders, from 0) of the existing run
    ``run_id``. Without ``complete``, one ``--parallel-folds`` worker's or Ray task's share: the run
    is left to its parent to record and complete. With ``complete`` (``--only-folds``) the run's
    summary is updated under its lock and, if these were its last folds, the run is completed here.
    ``owner``: the lock token of a Ray task, so its retry takes over the lock of its dead attempt."""
    run = Run.resume(project, competition, run_id)   # its status is the parent's to record
    with ExitStack() as held:         # the folds are claimed first: a busy one is refused before any work
        for k in run.todo(folds):
            _took_over(held.enter_context(fold_lock(run.record.path, k, owner=owner)), k, report)
        prepared = prepare(project, competition, run.config, report)
        run.check_data(prepared.manifest.fingerprint)
        unknown = sorted(set(folds) - set(range(len(prepared.splits))))
        if unknown:
            raise KitError(f"{run.record.path}: run {run_id} has {len(prepared.splits)} split(s) (fold_0 to "
                           f"fold_{len(prepared.splits) - 1}), no fold_{', fold_'.join(map(str, unknown))}")
        if complete:
            run.attach(prepared.ready())
            run.save()
        _train_each(project, competition, run, prepared, folds, report, summary=complete, locked=True)
    if complete:
        run.complete_if_done(prepared.manifest, prepared.splits, prepared.groups)
    return run.record


def _took_over(gone: Holder | None, k: int, report: Report) -> None:
    if gone is not None:
        report(Warned(message=f"fold {k + 1}: took over the lock of {gone.text()}, which is gone; "
                              f"the fold resumes after its last finished epoch"))


def _train_each(project: Project, competition: Competition, run: Run, prepared: Prepared, folds: Sequence[int],
                report: Report, *, summary: bool = True, timebox: TimeBox | None = None,
                locked: bool = False) -> None:
    """Train the unfinished ``folds``, each under its lock file (``locked``: the caller holds them)."""
    for k in folds:
        if run.record.fold_done(k):
            report(FoldSkipped(fold=k))
            continue
        with nullcontext() if locked else fold_lock(run.record.path, k) as gone:
            _took_over(gone, k, report)
            run.record.refresh_folds()            # another process may have finished it meanwhile
            if run.record.fold_done(k):
                report(FoldSkipped(fold=k))
                continue
            train_idx, val_idx = prepared.splits[k]
            with interrupt.deferred():    # Ctrl-C is raised after a batch, never inside a step or a save
                result = train_fold(project, competition, run.config, prepared, run.record, k, train_idx, val_idx,
                                    report, timebox)
                run.add_fold(result, summary=summary)
        report(FoldDone(fold=k, folds=len(prepared.splits), score=result.score))


def plan_data(project: Project, competition: Competition, config: TrainConfig, report: Report = quiet) -> Prepared:
    """The checked manifest, the splits and the data warnings: what a run trains on, no image decoded."""
    report(Stage(message="checking images"))
    manifest = build_manifest(competition, project.data_root(competition.slug), "train", cache_dir=project.cache,
                              limit=config.limit, seed=config.seed, progress=ticker(report, "check"))
    groups = group_labels(project, manifest, competition, config, report)
    splits = make_splits(manifest.labels, folds=config.folds, holdout=config.holdout, seed=config.seed,
                         groups=groups)
    prepared = Prepared(manifest=manifest, splits=splits, groups=groups,
                        warnings=audit_warnings(project, competition, grouped=groups is not None))
    for warning in prepared.warnings:
        report(Warned(message=warning))
    return prepared


def prepare(project: Project, competition: Competition, config: TrainConfig, report: Report = quiet) -> Prepared:
    """:func:`plan_data`, then the decoded images and (for phase 1, phase 2 above a cut) the cached
    backbone outputs; ends with a :class:`~kaggle_kit.events.DataReady` event."""
    prepared = plan_data(project, competition, config, report)
    images = prepared.images = Cache(project.cache).images(prepared.manifest, config.image_size, config.resize,
                                                           report=report)
    if pretrained(config) and config.finetune_epochs > 0 and config.finetune_from:
        views = get_symmetry(competition.symmetries).cached_views if config.augment != "none" else ("id",)
        prepared.activation_views = tuple(views)
        prepared.activations = backbone_outputs(project, config, images, layer=config.finetune_from, views=views,
                                                report=report)
    if pretrained(config) and config.head_epochs > 0 and config.head_on_features:
        if prepared.activations is not None:   # the layers above the cut only: far cheaper
            prepared.features = features_from_activations(project, config, prepared.activations, len(images), report)
        else:
            prepared.features = backbone_features(project, config, prepared.manifest, images, report)
    if head_only(config) and config.tta:
        keys = [k for k in head_keys(competition.symmetries) if k != "id"]
        prepared.tta_features = backbone_outputs(project, config, images, layer=None, views=keys, report=report)
    report(prepared.ready())
    return prepared


def group_labels(project: Project, manifest: Manifest, competition: Competition,
                 config: TrainConfig, report: Report = quiet) -> list[str] | None:
    """Groups that must not straddle a split: the plugin's groups, or copies (hash and backbone features)."""
    if manifest.groups is not None:
        return list(manifest.groups)
    if config.group_duplicates:
        return copy_groups(project, manifest, report=report)
    return None


def head_only(config: TrainConfig) -> bool:
    """Only the head was trained, on cached features: every fold model has the same backbone."""
    return pretrained(config) and config.head_epochs > 0 and config.head_on_features and config.finetune_epochs == 0

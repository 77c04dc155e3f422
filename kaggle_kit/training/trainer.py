"""The trainer: k-fold (or holdout) fine-tuning in two phases, recorded so it can be resumed.

Per fold, phase 1 trains the head on the frozen backbone (on cached backbone features, which makes
it nearly free), phase 2 unfreezes the top of the backbone at a lower learning rate. The competition
metric picks the checkpoint (max for accuracy and F1, min for log loss); out-of-fold predictions give
the run's CV score.

Example (a notebook)::

    from kaggle_kit.project import Project
    from kaggle_kit.training.trainer import train
    project = Project.find()
    comp = project.competition("cifar-10")
    run = train(project, comp, comp.config("fast", {"folds": 2, "limit": 400}))
    run.cv

"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kaggle_kit import interrupt
from kaggle_kit.atomic import atomic_write
from kaggle_kit.competition import Competition
from kaggle_kit.data.cache import Cache
from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import KitError
from kaggle_kit.training.folds import make_splits
from kaggle_kit.data.manifest import Manifest, build_manifest
from kaggle_kit.project import Project
from kaggle_kit.training.runs import FoldResult, RunRecord, library_versions, load_run
from kaggle_kit.training.schedules import SCHEDULES
from kaggle_kit.model.features import backbone_features, backbone_outputs, features_from_activations, pretrained
from kaggle_kit.model.similar import copy_groups

Report = Callable[..., None]   # report(kind: str, **fields): progress for the CLI to draw


def _quiet(kind: str, **fields: Any) -> None:
    pass


@dataclass
class Prepared:
    """What every fold shares: the manifest, the decoded-image cache, the splits, the features."""

    manifest: Manifest
    images: Any
    splits: list
    features: Any = None
    activations: Any = None         # frozen-layer outputs for phase 2 with ``finetune_from``
    warnings: list[str] = field(default_factory=list)


def train(project: Project, competition: Competition, config: TrainConfig, *, resume: str | None = None,
          only_folds: Sequence[int] | None = None, report: Report = _quiet) -> RunRecord:
    """Train (or resume) a run and return its record; Ctrl-C and kills keep finished work.

    ``only_folds`` trains just those folds of an existing run (``resume``) and leaves the run
    unfinished: that is how ``--parallel-folds`` workers share one run.
    """
    if resume:
        run = load_run(project, competition.slug, resume)
        if run.status == "complete":
            raise KitError(f"{run.path}: run {run.run_id} is already complete")
        config = TrainConfig.from_dict(run.config)
        run.status = "running"            # not "interrupted" or "failed" while it trains again
    elif only_folds is not None:
        raise KitError("only_folds needs an existing run (resume=<run id>)")
    else:
        SCHEDULES.get(config.finetune_schedule)   # a misspelt name fails now, not after phase 1
        run = new_run(project, competition, config)
    report("run", run_id=run.run_id, path=str(run.path), resumed=bool(resume))
    start = time.perf_counter() - run.seconds
    try:
        prepared = prepare(project, competition, config, report)
        run.n_splits = len(prepared.splits)
        run.train_size = len(prepared.manifest)
        run.excluded = [{"path": e.path, "reason": e.reason} for e in prepared.manifest.excluded]
        run.warnings = prepared.warnings
        if run.fingerprint and run.fingerprint != prepared.manifest.fingerprint:
            raise KitError(f"{run.path}: the training images changed since run {run.run_id} started; "
                           f"start a new run instead of resuming")
        run.fingerprint = prepared.manifest.fingerprint
        if only_folds is None:
            run.save()
        for k, (tr, va) in enumerate(prepared.splits):
            if only_folds is not None and k not in only_folds:
                continue
            if run.fold_done(k):
                report("fold_skip", fold=k)
                continue
            with interrupt.deferred():    # Ctrl-C is raised after a batch, never inside a step or a save
                result = train_fold(project, competition, config, prepared, run, k, tr, va, report)
                run.add_fold(result)
                if only_folds is None:
                    run.seconds = round(time.perf_counter() - start, 1)
                    run.save()
            report("fold_done", fold=k, score=result.score, folds=len(prepared.splits))
        if only_folds is not None:
            return run
        finish(run, competition, prepared)
        run.seconds = round(time.perf_counter() - start, 1)
        run.status = "complete"
        run.save()
        return run
    except KeyboardInterrupt:
        run.status = "interrupted"
        run.seconds = round(time.perf_counter() - start, 1)
        run.save()
        raise
    except KitError:
        if only_folds is None:            # a fold worker's failure is recorded by its parent
            run.status = "failed"
            try:
                run.save()
            except KitError:              # e.g. the disk is still full: the first error is the one to show
                pass
        raise


def new_run(project: Project, competition: Competition, config: TrainConfig) -> RunRecord:
    """A new run record of ``config``, status running (``--parallel-folds`` creates it before its workers)."""
    return RunRecord.create(project, competition.slug, backbone=config.backbone, config=config.to_dict(),
                            classes=list(competition.classes), metric=competition.metric,
                            direction=competition.scorer.direction, versions=library_versions())


def prepare(project: Project, competition: Competition, config: TrainConfig, report: Report = _quiet) -> Prepared:
    """Manifest, image cache, splits and (for phase 1) backbone features."""
    cache = Cache(project.cache)
    report("stage", message="checking images")
    manifest = build_manifest(competition, project.data_root(competition.slug), "train", cache_dir=project.cache,
                              limit=config.limit, seed=config.seed,
                              progress=lambda d, n: report("progress", task="check", done=d, total=n))
    report("stage", message=f"caching {len(manifest)} images at {config.image_size}px")
    images = cache.images(manifest, config.image_size, config.resize,
                          progress=lambda d, n: report("progress", task="cache", done=d, total=n))
    groups = group_labels(project, manifest, competition, config)
    splits = make_splits(manifest.labels, folds=config.folds, holdout=config.holdout, seed=config.seed,
                         groups=groups)
    from kaggle_kit.tools.audit import audit_warnings

    prepared = Prepared(manifest=manifest, images=images, splits=splits,
                        warnings=audit_warnings(project, competition, grouped=groups is not None))
    for warning in prepared.warnings:
        report("warning", message=warning)
    if pretrained(config) and config.finetune_epochs > 0 and config.finetune_from:
        report("stage", message=f"computing {config.backbone} activations at {config.finetune_from} (cached)")
        prepared.activations = backbone_outputs(project, config, images, layer=config.finetune_from,
                                                flip=config.augment != "none", report=report)
    if pretrained(config) and config.head_epochs > 0 and config.head_on_features:
        report("stage", message=f"computing {config.backbone} features (cached for later runs)")
        if prepared.activations is not None:   # the layers above the cut only: far cheaper
            prepared.features = features_from_activations(project, config, prepared.activations, len(images), report)
        else:
            prepared.features = backbone_features(project, config, manifest, images, report)
    return prepared


def group_labels(project: Project, manifest: Manifest, competition: Competition,
                 config: TrainConfig) -> list[str] | None:
    """Groups that must not straddle a split: the plugin's groups, or copies (hash and backbone features)."""
    if manifest.groups is not None:
        return list(manifest.groups)
    if config.group_duplicates:
        return copy_groups(project, manifest)
    return None


def head_only(config: TrainConfig) -> bool:
    """Only the head was trained, on cached features: every fold model has the same backbone."""
    return pretrained(config) and config.head_epochs > 0 and config.head_on_features and config.finetune_epochs == 0


def train_fold(project: Project, competition: Competition, config: TrainConfig, prepared: Prepared,
               run: RunRecord, k: int, train_idx: np.ndarray, val_idx: np.ndarray, report: Report) -> FoldResult:
    import keras

    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.training.callbacks import EarlyStop, EvaluateMetric, Progress, ReduceLR, SaveBest, SaveState, StopOnInterrupt
    from kaggle_kit.model.classifier import build_head, build_model, load_model, save_model, set_trainable, top_model
    from kaggle_kit.data.pipeline import feature_dataset, image_dataset, make_augment
    from kaggle_kit.training.schedules import adapts_on_plateau, make_schedule
    from kaggle_kit.model.strategy import get_strategy

    fold_start = time.perf_counter()
    fold_dir = run.fold_dir(k)
    fold_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(fold_dir)
    keras.utils.set_random_seed(config.seed + k)
    strategy = get_strategy(config.strategy)
    labels = prepared.manifest.labels
    n_classes = len(competition.classes)
    y_val = labels[val_idx]
    batch = strategy.global_batch(config.batch_size)
    mode = competition.scorer.direction
    history = run.path / "history.csv"

    with strategy.scope():
        model = build_model(get_backbone(config.backbone), n_classes=n_classes, image_size=config.image_size,
                            weights=config.weights, dropout=config.dropout, cache_dir=project.cache)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    best_path = fold_dir / "best.keras"
    best_state: dict | None = None
    epochs_run = 0

    def fit(trainee, phase: int, train_ds, val_ds, epochs: int, lr: float, best_file: Path,
            save: Callable[[Path], None] | None = None, schedule: str = "plateau") -> dict:
        """One phase; the best model (``save``, default ``trainee.save``) goes to ``best_file``;
        resumes from ``last.keras`` when the saved state is in this phase."""
        nonlocal epochs_run
        initial = 0
        evaluator = EvaluateMetric(val_ds, y_val, competition.scorer)
        saver = SaveBest(path=best_file, save=save or trainee.save, evaluator=evaluator, mode=mode)
        stopper = EarlyStop(patience=config.patience, mode=mode)
        trackers = [saver, stopper]
        if adapts_on_plateau(schedule):
            trackers.append(ReduceLR(patience=config.lr_patience, mode=mode))
        if best_state is not None:  # phase 2 must beat phase 1's best to overwrite the checkpoint
            saver.load_state({**best_state, "best_epoch": -1, "wait": 0})
        steps = int(train_ds.cardinality())
        with strategy.scope():
            trainee.compile(optimizer=keras.optimizers.Adam(make_schedule(schedule, lr, total_steps=epochs * steps)),
                            loss=loss)
        if state and state["phase"] == phase:
            trainee.set_weights(load_model(fold_dir / "last.keras").get_weights())
            for t, s in zip(trackers, state["trackers"]):
                t.load_state(s)
            initial = state["epoch"] + 1
            if adapts_on_plateau(schedule):
                trainee.optimizer.learning_rate = state["lr"]
            else:                       # a schedule's rate follows the step count: continue where it was
                with strategy.scope():
                    trainee.optimizer.build(trainee.trainable_variables)
                trainee.optimizer.iterations.assign(initial * steps)
            report("resume", fold=k, phase=phase, epoch=initial)
        if initial < epochs and not (state and state["phase"] == phase and stopper.wait >= config.patience):
            trainee.fit(train_ds, epochs=epochs, initial_epoch=initial, verbose=0, callbacks=[
                StopOnInterrupt(), evaluator, *trackers,
                SaveState(fold_dir=fold_dir, phase=phase, trackers=trackers, history=history, fold=k),
                Progress(report, fold=k, phase=phase),
            ])
            epochs_run += len(trainee.history.epoch) if trainee.history else 0
        return saver.state()

    # phase 1: the head on the frozen backbone
    if pretrained(config) and config.head_epochs > 0 and not (state and state["phase"] > 1):
        set_trainable(model, 0)
        if prepared.features is not None:
            with strategy.scope():
                head = build_head(prepared.features.shape[0], n_classes, config.dropout)
            tr_ds = feature_dataset(prepared.features, train_idx, labels[train_idx], n_classes=n_classes,
                                    batch_size=max(batch, 64), shuffle=True, seed=config.seed + k)
            va_ds = feature_dataset(prepared.features, val_idx, y_val, n_classes=n_classes,
                                    batch_size=256, shuffle=False, seed=0)
            head_file = fold_dir / "head_best.keras"
            best_state = fit(head, 1, tr_ds, va_ds, config.head_epochs, config.head_lr, head_file)
            # the small head was checkpointed while training; the full model is written once
            model.get_layer("head").set_weights(load_model(head_file).get_layer("head").get_weights())
            save_model(model, best_path)
        else:
            tr_ds = image_dataset(prepared.images, train_idx, labels[train_idx], n_classes=n_classes,
                                  batch_size=batch, shuffle=True, seed=config.seed + k,
                                  augment=make_augment(config.augment, config.seed + k))
            va_ds = image_dataset(prepared.images, val_idx, y_val, n_classes=n_classes, batch_size=batch)
            best_state = fit(model, 1, tr_ds, va_ds, config.head_epochs, config.head_lr, best_path)

    # phase 2: unfreeze the top of the backbone (the whole network when it is not pretrained)
    if config.finetune_epochs > 0 or not pretrained(config):
        if best_path.is_file():
            model.set_weights(load_model(best_path).get_weights())
        epochs = config.finetune_epochs if pretrained(config) else max(config.finetune_epochs, config.head_epochs)
        lr = config.finetune_lr if pretrained(config) else config.head_lr
        if prepared.activations is not None:
            # train only the layers above ``finetune_from`` on the cached activations below it
            with strategy.scope():
                top = top_model(model, config.finetune_from)
            n = len(prepared.images)
            flips = len(prepared.activations) // n
            tr_idx = np.concatenate([train_idx + f * n for f in range(flips)])
            tr_ds = feature_dataset(prepared.activations, tr_idx, np.tile(labels[train_idx], flips),
                                    n_classes=n_classes, batch_size=batch, shuffle=True, seed=config.seed + k)
            va_ds = feature_dataset(prepared.activations, val_idx, y_val, n_classes=n_classes,
                                    batch_size=256, shuffle=False, seed=0)
            best_state = fit(top, 2, tr_ds, va_ds, epochs, lr, best_path, save=model.save,
                             schedule=config.finetune_schedule)
        else:
            set_trainable(model, config.unfreeze if pretrained(config) else 10_000)
            tr_ds = image_dataset(prepared.images, train_idx, labels[train_idx], n_classes=n_classes,
                                  batch_size=batch, shuffle=True, seed=config.seed + k,
                                  augment=make_augment(config.augment, config.seed + k))
            va_ds = image_dataset(prepared.images, val_idx, y_val, n_classes=n_classes, batch_size=batch)
            best_state = fit(model, 2, tr_ds, va_ds, epochs, lr, best_path, schedule=config.finetune_schedule)

    if not best_path.is_file() or best_state is None or best_state.get("best") is None:
        raise KitError(f"{fold_dir}: fold {k} trained no epoch (check head_epochs/finetune_epochs)")
    proba = np.load(fold_dir / "oof.npy")
    score = competition.scorer(y_val, proba)
    (fold_dir / "last.keras").unlink(missing_ok=True)  # the best model is what predict uses
    return FoldResult(fold=k, score=round(score, 6), best_epoch=int(best_state.get("best_epoch", -1)) + 1,
                      epochs=epochs_run, train_size=len(train_idx), val_size=len(val_idx),
                      seconds=round(time.perf_counter() - fold_start, 1))


def _load_state(fold_dir: Path) -> dict | None:
    path = fold_dir / "state.json"
    if not (path.is_file() and (fold_dir / "last.keras").is_file()):
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def finish(run: RunRecord, competition: Competition, prepared: Prepared) -> None:
    """Assemble out-of-fold predictions into ``oof.csv`` and score them: the run's CV."""
    import pandas as pd

    manifest = prepared.manifest
    rows, y_all, p_all = [], [], []
    for k, (_, va) in enumerate(prepared.splits):
        proba = np.load(run.fold_dir(k) / "oof.npy")
        for i, p in zip(va, proba):
            rows.append({"id": manifest.ids[i], "fold": k, "label": competition.classes[manifest.labels[i]],
                         **{c: float(v) for c, v in zip(competition.classes, p)}})
        y_all.append(manifest.labels[va])
        p_all.append(proba)
    run.cv = round(competition.scorer(np.concatenate(y_all), np.concatenate(p_all)), 6)
    frame = pd.DataFrame(rows)
    atomic_write(run.path / "oof.csv", lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6f"))

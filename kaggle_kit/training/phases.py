"""One fold's training in two phases, each resumable after its last finished epoch.

Phase 1 trains the head on the frozen backbone, phase 2 unfreezes the top of the backbone at a
lower learning rate (the whole network when it is not pretrained). :meth:`FoldTrainer.plan` is the
one place that chooses what a phase trains on and which model it trains:

=========  ==================================  ==================================================
phase      inputs                              trainee
=========  ==================================  ==================================================
1          cached backbone features            the head alone (copied into the classifier after)
1          decoded images                      the classifier, backbone frozen
2          cached activations at the cut       the layers above ``finetune_from``
2          decoded images                      the classifier, top ``unfreeze`` layers trainable
=========  ==================================  ==================================================

:meth:`FoldTrainer.fit` then runs any of them the same way: the competition metric picks the
checkpoint, ``state.json`` + ``last.keras`` after each epoch let a killed fold resume there.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import KitError
from kaggle_kit.events import BudgetStop, FoldResumed, Report, Stage
from kaggle_kit.model.features import pretrained
from kaggle_kit.project import Project
from kaggle_kit.training.runs import FoldResult, RunRecord

if TYPE_CHECKING:
    from kaggle_kit.training.planner import TimeBox
    from kaggle_kit.training.trainer import Prepared

__all__ = ["Phase", "FoldTrainer", "train_fold"]

Inputs = Literal["images", "features", "activations"]


@dataclass
class Phase:
    """What one phase trains (``trainee``) on what (``inputs``: the datasets ``train``/``val``)."""

    number: int
    inputs: Inputs
    trainee: Any                    # a keras.Model
    train: Any                      # tf.data.Dataset of (x, one-hot y)
    val: Any
    epochs: int
    lr: float
    best_file: Path                 # where the best checkpoint goes
    save: Callable[[Path], None]    # how it is written (the classifier's save for a cut model)
    schedule: str = "plateau"


class FoldTrainer:
    """Trains fold ``k`` of ``run``: build the classifier, plan and fit each phase, score the fold."""

    def __init__(self, project: Project, competition: Competition, config: TrainConfig, prepared: "Prepared",
                 run: RunRecord, k: int, train_idx: np.ndarray, val_idx: np.ndarray, report: Report,
                 timebox: "TimeBox | None" = None) -> None:
        import keras

        from kaggle_kit.model.backbones import get_backbone
        from kaggle_kit.model.classifier import build_model
        from kaggle_kit.model.strategy import get_strategy

        self.project, self.competition, self.config, self.prepared = project, competition, config, prepared
        self.run, self.k, self.train_idx, self.val_idx, self.report = run, k, train_idx, val_idx, report
        self.started = time.perf_counter()
        self.timebox = timebox                         # a --budget run: this fold's share of the time left
        self.deadline = timebox.fold_deadline(len(prepared.splits) - k) if timebox else None
        self.fold_dir = run.fold_dir(k)
        self.fold_dir.mkdir(parents=True, exist_ok=True)
        self.best_path = self.fold_dir / "best.keras"
        self.state = _load_state(self.fold_dir)        # where a killed or interrupted fold stopped
        keras.utils.set_random_seed(config.seed + k)
        self.strategy = get_strategy(config.strategy)
        self.labels = prepared.manifest.labels
        self.n_classes = len(competition.classes)
        self.y_val = self.labels[val_idx]
        self.batch = self.strategy.global_batch(config.batch_size)
        self.mode = competition.scorer.direction
        self.loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        with self.strategy.scope():
            self.model = build_model(get_backbone(config.backbone), n_classes=self.n_classes,
                                     image_size=config.image_size, weights=config.weights, dropout=config.dropout,
                                     cache_dir=project.cache)
        self.best_state: dict | None = None            # the checkpoint tracker's, carried into phase 2
        self.epochs_run = 0

    def train(self) -> FoldResult:
        from kaggle_kit.model.classifier import load_model, save_model

        config, state = self.config, self.state
        if pretrained(config) and config.head_epochs > 0 and not (state and state["phase"] > 1):
            phase = self.plan(1)
            self.fit(phase)
            if phase.inputs == "features":   # the small head was checkpointed; the classifier is written once
                self.model.get_layer("head").set_weights(load_model(phase.best_file).get_layer("head").get_weights())
                save_model(self.model, self.best_path)
        if (config.finetune_epochs > 0 or not pretrained(config)) and self._time_for(2):
            if self.best_path.is_file():
                self.model.set_weights(load_model(self.best_path).get_weights())
            self.fit(self.plan(2))
        if config.tta and self.best_path.is_file():
            self.predict_views()
        return self.result()

    def _time_for(self, phase: int) -> bool:
        """Whether half an epoch of ``phase`` (the plan's estimate) fits before this fold's deadline;
        when it does not, the phase is skipped (a resumed phase always goes on)."""
        if self.deadline is None or self.timebox is None or (self.state and self.state["phase"] == phase):
            return True
        left = self.deadline - time.time()
        if left >= 0.5 * self.timebox.epoch_s.get(phase, 0.0) or not self.best_path.is_file():
            return True
        self.report(BudgetStop(fold=self.k, phase=phase, epoch=0, epochs=self.config.finetune_epochs,
                               left_s=max(0.0, left)))
        return False

    def predict_views(self) -> None:
        """The best model's validation predictions under the TTA view keys this path can afford
        (:mod:`kaggle_kit.training.tta`), saved beside ``oof.npy`` for the run to choose its TTA."""
        from kaggle_kit.data.pipeline import image_dataset
        from kaggle_kit.model.classifier import load_model, top_model
        from kaggle_kit.symmetry import split_key
        from kaggle_kit.training.tta import candidate_keys, head_keys, save_fold_views

        prepared, sym, n = self.prepared, self.competition.symmetries, len(self.prepared.images)
        best = load_model(self.best_path)

        def cached(records, order: list[str], net):     # net: a Keras layer or model, called on batches
            def predict(key: str):
                rows = self.val_idx + order.index(key) * n
                return np.concatenate([np.asarray(net(records.read(rows[i:i + 256]).astype(np.float32),
                                                      training=False))
                                       for i in range(0, len(rows), 256)])
            return predict

        if prepared.tta_features is not None:            # head-only: each view's cached features
            keys = head_keys(sym)
            order = [k for k in keys if k != "id"]
            predict = cached(prepared.tta_features, order, best.get_layer("head"))
        elif prepared.activations is not None:           # the layers above the cut, on cached views
            keys = candidate_keys(sym, prepared.activation_views)
            predict = cached(prepared.activations, list(prepared.activation_views),
                             top_model(best, self.config.finetune_from))
        else:
            keys = candidate_keys(sym)

            def predict(key: str):
                view, zoom = split_key(key)
                return best.predict(image_dataset(prepared.images, self.val_idx, None, n_classes=self.n_classes,
                                                  batch_size=self.batch, view=view, zoom=zoom), verbose=0)
        save_fold_views(self.fold_dir, keys, predict)

    def plan(self, number: int) -> Phase:
        """Phase ``number``: its inputs and its trainee, chosen here and nowhere else."""
        from kaggle_kit.model.classifier import build_head, set_trainable, top_model

        config, model = self.config, self.model
        if number == 1:
            cached, epochs, lr, schedule = self.prepared.features, config.head_epochs, config.head_lr, "plateau"
        else:
            cached, schedule = self.prepared.activations, config.finetune_schedule
            epochs = config.finetune_epochs if pretrained(config) else max(config.finetune_epochs, config.head_epochs)
            lr = config.finetune_lr if pretrained(config) else config.head_lr
        if cached is None:
            set_trainable(model, 0 if number == 1 else config.unfreeze if pretrained(config) else 10_000,
                          bn=config.bn)
            inputs: Inputs = "images"
            trainee, best_file, save = model, self.best_path, model.save
        elif number == 1:
            set_trainable(model, 0)
            inputs = "features"
            with self.strategy.scope():
                trainee = build_head(cached.shape[0], self.n_classes, config.dropout)
            best_file, save = self.fold_dir / "head_best.keras", trainee.save
        else:
            inputs = "activations"
            with self.strategy.scope():
                trainee = top_model(model, config.finetune_from, bn=config.bn)
            best_file, save = self.best_path, model.save
        train, val = self._datasets(cached, batch=max(self.batch, 64) if inputs == "features" else self.batch)
        share = self._share(epochs) if number == 2 else 1.0
        if share < 1:                                   # each epoch a new random subset (shuffled anew each pass)
            train = train.take(max(1, math.ceil(share * int(train.cardinality()))))
        return Phase(number=number, inputs=inputs, trainee=trainee, train=train, val=val, epochs=epochs, lr=lr,
                     best_file=best_file, save=save, schedule=schedule)

    def _share(self, epochs: int) -> float:
        """Phase 2's share of the images an epoch sees: the config's, or in a --budget run the share
        that fits the time this fold has left (not on resuming: the schedule counts its steps)."""
        share = self.config.finetune_share
        if self.timebox is None or self.deadline is None or (self.state and self.state["phase"] == 2):
            return share
        fitted = self.timebox.share_for(epochs, share, self.deadline - time.time())
        if fitted != share:
            self.report(Stage(message=f"fold {self.k + 1} phase 2: {epochs} epoch(s) of {fitted:.0%} of the images "
                                      f"fit the {self.deadline - time.time():.0f}s left (planned {share:.0%})"))
        return fitted

    def _datasets(self, cached: Any, *, batch: int) -> tuple[Any, Any]:
        """Training (shuffled, augmented) and validation datasets of the images, or of cached backbone
        outputs (whose symmetry views, if any, follow as records n..2n-1, ... and train too; MixUp
        presets mix them, :func:`~kaggle_kit.data.augment.make_feature_mix`)."""
        from kaggle_kit.data.augment import make_augment, make_feature_mix
        from kaggle_kit.data.pipeline import feature_dataset, image_dataset

        seed, y_train = self.config.seed + self.k, self.labels[self.train_idx]
        if cached is None:
            images = self.prepared.images
            augment = make_augment(self.config.augment, seed, self.competition.symmetries)
            return (image_dataset(images, self.train_idx, y_train, n_classes=self.n_classes, batch_size=batch,
                                  shuffle=True, seed=seed, augment=augment),
                    image_dataset(images, self.val_idx, self.y_val, n_classes=self.n_classes, batch_size=batch))
        n = len(self.prepared.images)
        flips = len(cached) // n
        train_idx = np.concatenate([self.train_idx + f * n for f in range(flips)])
        return (feature_dataset(cached, train_idx, np.tile(y_train, flips), n_classes=self.n_classes,
                                batch_size=batch, shuffle=True, seed=seed,
                                mix=make_feature_mix(self.config.augment, seed)),
                feature_dataset(cached, self.val_idx, self.y_val, n_classes=self.n_classes, batch_size=256,
                                shuffle=False, seed=0))

    def fit(self, phase: Phase) -> None:
        """Train ``phase``, from the epoch after the saved state's when it is in this phase."""
        from kaggle_kit.model.classifier import load_model
        from kaggle_kit.training.callbacks import (Deadline, EarlyStop, EvaluateMetric, ReduceLR, ReportProgress,
                                                   SaveBest, SaveState, StopOnInterrupt)
        from kaggle_kit.training.schedules import adapts_on_plateau

        config, state, trainee, strategy = self.config, self.state, phase.trainee, self.strategy
        evaluator = EvaluateMetric(phase.val, self.y_val, self.competition.scorer, ema=config.ema and phase.number == 2)
        saver = SaveBest(path=phase.best_file, save=phase.save, evaluator=evaluator, mode=self.mode)
        stopper = EarlyStop(patience=config.patience, mode=self.mode)
        trackers = [saver, stopper]
        if adapts_on_plateau(phase.schedule):
            trackers.append(ReduceLR(patience=config.lr_patience, mode=self.mode))
        if self.best_state is not None:  # phase 2 must beat phase 1's best to overwrite the checkpoint
            saver.load_state({**self.best_state, "best_epoch": -1, "wait": 0})
        steps = int(phase.train.cardinality())
        with strategy.scope():
            trainee.compile(optimizer=self.optimizer(phase, total_steps=phase.epochs * steps), loss=self.loss)
        initial = 0
        resuming = bool(state and state["phase"] == phase.number)
        if resuming:
            trainee.set_weights(load_model(self.fold_dir / "last.keras").get_weights())
            for t, s in zip(trackers, state["trackers"]):
                t.load_state(s)
            initial = state["epoch"] + 1
            if adapts_on_plateau(phase.schedule):
                trainee.optimizer.learning_rate = state["lr"]
            else:                       # a schedule's rate follows the step count: continue where it was
                with strategy.scope():
                    trainee.optimizer.build(trainee.trainable_variables)
                trainee.optimizer.iterations.assign(initial * steps)
            self.report(FoldResumed(fold=self.k, phase=phase.number, epoch=initial))
        if initial < phase.epochs and not (resuming and stopper.wait >= config.patience):
            trainee.fit(phase.train, epochs=phase.epochs, initial_epoch=initial, verbose=0, callbacks=[
                StopOnInterrupt(), evaluator, *trackers,
                SaveState(fold_dir=self.fold_dir, phase=phase.number, trackers=trackers,
                          history=self.run.path / "history.csv", fold=self.k),
                ReportProgress(self.report, fold=self.k, phase=phase.number, higher_is_better=self.mode == "max"),
                *([Deadline(self.deadline, self.report, fold=self.k, phase=phase.number,
                            expected_s=self.timebox.epoch_s.get(phase.number))] if self.deadline else []),
            ])
            self.epochs_run += len(trainee.history.epoch) if trainee.history else 0
        self.best_state = saver.state()

    def optimizer(self, phase: Phase, *, total_steps: int) -> Any:
        """Phase 1's plain Adam; phase 2's as the config says: AdamW, layer-wise rates, the EMA."""
        import keras

        from kaggle_kit.training.optim import ema_momentum, make_optimizer, stage_multipliers
        from kaggle_kit.training.schedules import make_schedule

        config = self.config
        lr = make_schedule(phase.schedule, phase.lr, total_steps=total_steps, warmup=config.warmup)
        if phase.number == 1:
            return keras.optimizers.Adam(lr)
        return make_optimizer(config.optimizer, lr, weight_decay=config.weight_decay,
                              multipliers=stage_multipliers(self.model, phase.trainee.trainable_variables,
                                                            config.layer_decay),
                              ema=ema_momentum(total_steps, decay=config.ema_decay) if config.ema else None)

    def result(self) -> FoldResult:
        """Score the fold's best checkpoint on its validation images (``oof.npy``)."""
        best = self.best_state
        if not self.best_path.is_file() or best is None or best.get("best") is None:
            raise KitError(f"{self.fold_dir}: fold {self.k + 1} trained no epoch "
                           f"(check head_epochs/finetune_epochs)")
        proba = np.load(self.fold_dir / "oof.npy")
        score = self.competition.scorer(self.y_val, proba)
        (self.fold_dir / "last.keras").unlink(missing_ok=True)  # the best model is what predict uses
        return FoldResult(fold=self.k, score=round(score, 6), best_epoch=int(best.get("best_epoch", -1)) + 1,
                          epochs=self.epochs_run, train_size=len(self.train_idx), val_size=len(self.val_idx),
                          seconds=round(time.perf_counter() - self.started, 1), ema=bool(best.get("ema", False)))


def train_fold(project: Project, competition: Competition, config: TrainConfig, prepared: "Prepared",
               run: RunRecord, k: int, train_idx: np.ndarray, val_idx: np.ndarray, report: Report,
               timebox: "TimeBox | None" = None) -> FoldResult:
    """Train fold ``k`` (resuming it where it stopped; to its share of ``timebox``) and return its result."""
    return FoldTrainer(project, competition, config, prepared, run, k, train_idx, val_idx, report, timebox).train()


def _load_state(fold_dir: Path) -> dict | None:
    path = fold_dir / "state.json"
    if not (path.is_file() and (fold_dir / "last.keras").is_file()):
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None

"""Training callbacks. One :class:`Tracker` base watches the competition metric; checkpointing,
early stopping and learning-rate reduction differ only in what they do on improvement or plateau.

:class:`EvaluateMetric` must come first in the callback list: it scores the validation set with
the competition's own metric and writes ``val_score`` into the epoch logs the others read.

Example:
    >>> t = Tracker(mode="min")
    >>> [t.update(v) for v in (0.5, 0.4, 0.45)]
    [True, True, False]
    >>> (t.best, t.best_epoch, t.wait)
    (0.4, 1, 1)
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import keras
import numpy as np

from kaggle_kit import interrupt
from kaggle_kit.atomic import atomic_path, atomic_write_json
from kaggle_kit.errors import DiskFullError, KitError
from kaggle_kit.events import Batch, BudgetStop, EpochBegin, EpochEnd, PhaseEnd, Report
from kaggle_kit.metrics import Metric, log_loss

__all__ = ["Tracker", "EvaluateMetric", "SaveBest", "EarlyStop", "ReduceLR", "SaveState", "HISTORY_FIELDS",
           "append_row", "StopOnInterrupt", "ReportProgress", "Deadline"]


class Tracker(keras.callbacks.Callback):
    """Tracks the best value of ``logs[monitor]`` in direction ``mode`` ("max" or "min").

    A tie on the monitored value (common for accuracy on a small validation set) is broken by the
    lower ``logs[tiebreak]`` (validation log loss), so a more confident model still counts as better.
    """

    def __init__(self, *, monitor: str = "val_score", mode: str = "max", min_delta: float = 0.0,
                 tiebreak: str | None = "val_logloss") -> None:
        super().__init__()
        self.monitor, self.mode, self.min_delta, self.tiebreak = monitor, mode, min_delta, tiebreak
        self.best: float | None = None
        self.best_tie: float | None = None
        self.best_epoch = -1
        self.wait = 0
        self._epoch = -1

    def improved(self, value: float, tie: float | None = None) -> bool:
        if self.best is None:
            return True
        if value == self.best and tie is not None and self.best_tie is not None:
            return tie < self.best_tie
        return value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta

    def update(self, value: float, tie: float | None = None) -> bool:
        self._epoch += 1
        if self.improved(value, tie):
            self.best, self.best_tie, self.best_epoch, self.wait = value, tie, self._epoch, 0
            return True
        self.wait += 1
        return False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch - 1
        logs = logs or {}
        tie = logs.get(self.tiebreak) if self.tiebreak else None
        if self.update(float(logs[self.monitor]), None if tie is None else float(tie)):
            self.on_improve(epoch, logs)
        else:
            self.on_plateau(epoch, logs)

    def on_improve(self, epoch: int, logs: dict) -> None:
        pass

    def on_plateau(self, epoch: int, logs: dict) -> None:
        pass

    # state survives a resume
    def state(self) -> dict:
        return {"best": self.best, "best_tie": self.best_tie, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state(self, state: dict) -> None:
        self.best, self.best_tie = state.get("best"), state.get("best_tie")
        self.best_epoch, self.wait = state.get("best_epoch", -1), state.get("wait", 0)


class EvaluateMetric(keras.callbacks.Callback):
    """Scores the validation data with the competition metric: ``val_score`` and ``val_logloss``.

    With ``ema`` (the optimizer keeps a moving average of the weights) it scores the average too and
    reports the better of the two (the metric, ties to the lower log loss); ``val_ema`` is 1 when
    that is the average, and :meth:`chosen_weights` puts those weights in place while a checkpoint
    is written.
    """

    def __init__(self, val_data, y_true: np.ndarray, metric: Metric, *, ema: bool = False) -> None:
        super().__init__()
        self.val_data, self.y_true, self.metric, self.ema = val_data, y_true, metric, ema
        self.last_proba: np.ndarray | None = None
        self.last_ema = False

    def _predict(self) -> np.ndarray:
        return self.model.predict(self.val_data, verbose=0, callbacks=[StopOnInterrupt()])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from kaggle_kit.training.optim import has_ema

        proba = self._predict()
        score, loss = self.metric(self.y_true, proba), log_loss(self.y_true, proba)
        self.last_ema = False
        if self.ema and has_ema(self.model.optimizer):
            with self._swapped():
                averaged = self._predict()
            ema_score, ema_loss = self.metric(self.y_true, averaged), log_loss(self.y_true, averaged)
            if self.metric.better(ema_score, score) or (ema_score == score and ema_loss < loss):
                proba, score, loss, self.last_ema = averaged, ema_score, ema_loss, True
        self.last_proba = proba
        if logs is not None:
            logs["val_score"], logs["val_logloss"] = score, loss
            if self.ema:
                logs["val_ema"] = float(self.last_ema)

    @contextlib.contextmanager
    def _swapped(self) -> Iterator[None]:
        from kaggle_kit.training.optim import swap_ema

        swap_ema(self.model.optimizer)
        try:
            yield
        finally:
            swap_ema(self.model.optimizer)

    @contextlib.contextmanager
    def chosen_weights(self) -> Iterator[None]:
        """The weights last reported better (the moving average or the trained ones) in the model."""
        if self.last_ema:
            with self._swapped():
                yield
        else:
            yield


class SaveBest(Tracker):
    """Writes the best model (``save(path)``) and its validation predictions atomically; ``ema``
    records whether that checkpoint holds the weights' moving average."""

    def __init__(self, *, path: Path, save: Callable[[Path], None], evaluator: EvaluateMetric, **kw: Any) -> None:
        super().__init__(**kw)
        self.path, self.save, self.evaluator = Path(path), save, evaluator
        self.ema = False

    def on_improve(self, epoch: int, logs: dict) -> None:
        with atomic_path(self.path, suffix=".keras") as tmp, self.evaluator.chosen_weights():
            self.save(tmp)
        with atomic_path(self.path.with_name("oof.npy"), suffix=".npy") as tmp:
            np.save(tmp, self.evaluator.last_proba)
        self.ema = self.evaluator.last_ema

    def state(self) -> dict:
        return {**super().state(), "ema": self.ema}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.ema = bool(state.get("ema", False))


class EarlyStop(Tracker):
    """Stops training after ``patience`` epochs without improvement."""

    def __init__(self, *, patience: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.patience = patience

    def on_plateau(self, epoch: int, logs: dict) -> None:
        if self.wait >= self.patience:
            self.model.stop_training = True


class ReduceLR(Tracker):
    """Multiplies the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(self, *, patience: int, factor: float = 0.3, min_lr: float = 1e-6, **kw: Any) -> None:
        super().__init__(**kw)
        self.patience, self.factor, self.min_lr = patience, factor, min_lr

    def on_plateau(self, epoch: int, logs: dict) -> None:
        if self.wait >= self.patience:
            lr = float(self.model.optimizer.learning_rate)
            self.model.optimizer.learning_rate = max(self.min_lr, lr * self.factor)
            self.wait = 0


class SaveState(keras.callbacks.Callback):
    """After every epoch: the model being trained (``last.keras``), the trackers' state and a
    history row, so a killed run loses at most the epoch in progress."""

    def __init__(self, *, fold_dir: Path, phase: int, trackers: list[Tracker], history: Path,
                 fold: int) -> None:
        super().__init__()
        self.fold_dir, self.phase, self.trackers, self.history, self.fold = Path(fold_dir), phase, trackers, history, fold
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {} if logs is None else logs
        logs["lr"] = float(self.model.optimizer.learning_rate)   # the rate for the next epoch (ReportProgress shows it)
        with atomic_path(self.fold_dir / "last.keras", suffix=".keras") as tmp:
            self.model.save(tmp)
        atomic_write_json(self.fold_dir / "state.json", {
            "phase": self.phase, "epoch": epoch,
            "lr": logs["lr"],
            "trackers": [t.state() for t in self.trackers],
        })
        row = {"fold": self.fold, "phase": self.phase, "epoch": epoch + 1,
               "seconds": round(time.perf_counter() - self._start, 2),
               **{k: round(float(v), 6) for k, v in logs.items()}}
        append_row(self.history, row)


HISTORY_FIELDS = ["fold", "phase", "epoch", "seconds", "loss", "val_score", "val_logloss", "lr"]


def append_row(path: Path, row: dict) -> None:
    """Append one history row, as one ``O_APPEND`` write so parallel fold workers never interleave.
    A new file gets its header first: it is linked into place already holding it. A failed write (a
    full disk) cuts the file back to its earlier rows and raises DiskFullError or KitError."""
    size = 0
    try:
        if not path.exists():
            _create_with_header(path)
        line = io.StringIO()
        csv.DictWriter(line, fieldnames=HISTORY_FIELDS, extrasaction="ignore").writerow(row)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            os.write(fd, line.getvalue().encode())
        finally:
            os.close(fd)
    except OSError as e:
        if size:
            try:
                os.truncate(path, size)   # drop a partly written row
            except OSError:
                pass
        if e.errno == errno.ENOSPC:
            raise DiskFullError(f"{path}: disk full while writing; the earlier rows are intact") from None
        raise KitError(f"{path}: could not write: {e.strerror or e}") from None


def _create_with_header(path: Path) -> None:
    header = io.StringIO()
    csv.DictWriter(header, fieldnames=HISTORY_FIELDS).writeheader()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(header.getvalue())
        os.link(tmp, path)                # fails if another process created it first: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises a Ctrl-C held by :func:`kaggle_kit.interrupt.deferred` after the batch (training,
    validation or prediction) or the epoch in progress: never inside a training step or a save."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        interrupt.check()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        interrupt.check()

    on_test_batch_end = on_predict_batch_end = on_train_batch_end


class ReportProgress(keras.callbacks.Callback):
    """Reports a phase's epochs and batches as typed events (:class:`~kaggle_kit.events.EpochBegin`,
    ``Batch``, ``EpochEnd``, ``PhaseEnd``) of fold ``fold``; ``higher_is_better`` is the competition
    metric's direction, so a renderer names the right best epoch."""

    def __init__(self, report: Report, *, fold: int, phase: int, higher_is_better: bool = True) -> None:
        super().__init__()
        self.report, self.fold, self.phase, self.higher_is_better = report, fold, phase, higher_is_better
        self.steps: int | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.steps = self.params.get("steps")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.report(EpochBegin(fold=self.fold, phase=self.phase, epoch=epoch + 1, epochs=self.params.get("epochs"),
                               steps=self.steps))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.report(Batch(fold=self.fold, phase=self.phase, step=batch + 1, steps=self.steps))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.report(EpochEnd(fold=self.fold, phase=self.phase, epoch=epoch + 1, epochs=self.params.get("epochs"),
                             logs={k: float(v) for k, v in (logs or {}).items()},
                             higher_is_better=self.higher_is_better))

    def on_train_end(self, logs: dict | None = None) -> None:
        self.report(PhaseEnd(fold=self.fold, phase=self.phase))


class Deadline(keras.callbacks.Callback):
    """Stops a phase after the epoch when another epoch as long as the last would end past
    ``deadline`` (``time.time()`` seconds): a ``--budget`` run ends in time even when the plan's
    estimates were off. Goes last in the callback list, so an epoch's time includes its validation
    and checkpoints; the best checkpoint so far stays the fold's model."""

    def __init__(self, deadline: float, report: Report, *, fold: int, phase: int,
                 expected_s: float | None = None) -> None:
        super().__init__()
        self.deadline, self.report, self.fold, self.phase = deadline, report, fold, phase
        self.expected_s = expected_s        # the plan's estimate: the first epoch also traces the graph
        self._start = time.time()
        self._fastest: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.time()
        took = now - self._start
        self._fastest = took if self._fastest is None else min(self._fastest, took)
        upcoming = self._fastest if self.expected_s is None or epoch > 0 else min(took, self.expected_s)
        epochs = self.params.get("epochs") or 0
        if epoch + 1 < epochs and now + upcoming > self.deadline and not self.model.stop_training:
            self.model.stop_training = True
            self.report(BudgetStop(fold=self.fold, phase=self.phase, epoch=epoch + 1, epochs=epochs,
                                   left_s=max(0.0, self.deadline - now)))

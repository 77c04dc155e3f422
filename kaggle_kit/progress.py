"""Drawing the library's progress events with rich: in a terminal, in Jupyter, or into a plain file.

:class:`ProgressView` is a ``report`` callable: give it to ``train``, ``predict``, ``run_audit`` ...
It prints a line for each step, fold and warning and draws transient bars (with an ETA) for long
loops and epochs. rich finds out where it draws: a terminal gets live bars, Jupyter gets them too
when ``ipywidgets`` is installed (lines only without it), and a file or pipe gets the lines only.

Example (a notebook)::

    from kaggle_kit.progress import ProgressView
    with ProgressView() as view:
        run = train(project, comp, config, report=view)

Example (what a log file reads):
    >>> import io
    >>> from rich.console import Console
    >>> from kaggle_kit import events
    >>> out = io.StringIO()
    >>> with ProgressView(Console(file=out, width=100), clock=lambda: 0.0) as view:
    ...     view(events.Stage(message="60 images at 16px", cached=True))
    ...     view(events.FoldDone(fold=0, folds=5, score=0.9))
    >>> print(out.getvalue(), end="")
    60 images at 16px (from cache)
    fold 1/5 done: score 0.9000  (0s so far)
"""
from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from rich.markup import escape

from kaggle_kit import events
from kaggle_kit.events import Event

__all__ = ["ProgressView", "SLOW_EPOCH_S"]

SLOW_EPOCH_S = 10.0
"""An epoch that took longer than this gets a line of its own; faster ones are summed up per phase."""


@dataclass
class _Phase:
    """The phase being trained: epochs seen and the best so far, in the metric's direction."""

    key: tuple[int, int]
    start: float
    last: float
    epochs: int = 0
    best: tuple[float, float, int] | None = None    # (score, validation log loss, epoch)

    def add(self, e: events.EpochEnd) -> None:
        self.epochs += 1
        score = e.logs.get("val_score", math.nan)
        logloss = e.logs.get("val_logloss", math.inf)
        if self.best is None or _better(score, logloss, self.best, e.higher_is_better):
            self.best = (score, logloss, e.epoch)


def _better(score: float, logloss: float, best: tuple[float, float, int], higher_is_better: bool) -> bool:
    """``score`` beats ``best`` in the metric's direction; a tie goes to the lower log loss."""
    if score == best[0]:
        return logloss < best[1]
    return score > best[0] if higher_is_better else score < best[0]


class ProgressView:
    """A ``report`` callable drawing every event of :mod:`kaggle_kit.events` on a rich console.

    Use it as a context manager (that starts and stops the live bars); ``console`` defaults to a new
    ``rich.console.Console()``, ``clock`` to ``time.perf_counter``.
    """

    def __init__(self, console: Any = None, *, clock: Callable[[], float] = time.perf_counter) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console if console is not None else Console()
        self.clock = clock
        # live bars need a terminal, or Jupyter with ipywidgets (without it rich warns on every
        # refresh); a file or a pipe gets the lines only
        self.bars = self.console.is_terminal or (self.console.is_jupyter and
                                                 importlib.util.find_spec("ipywidgets") is not None)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=True,
                                 disable=not self.bars)
        self.tasks: dict[str, Any] = {}
        self.started = clock()
        self.phase: _Phase | None = None
        self._draw: dict[type[Event], Callable[[Any], None]] = {
            events.RunStarted: self._run, events.Stage: self._stage, events.Progress: self._progress,
            events.DataReady: self._data, events.EpochBegin: self._epoch_begin, events.Batch: self._batch,
            events.EpochEnd: self._epoch_end, events.PhaseEnd: self._phase_end,
            events.FoldResumed: self._resumed, events.FoldSkipped: self._skipped, events.FoldDone: self._done,
            events.Warned: self._warned, events.ServerReady: self._server, events.PlanReady: self._plan,
            events.BudgetStop: self._budget_stop, events.Calibrated: self._calibrated,
            events.NotebookStatus: self._notebook,
        }
        self._notebook_seen: tuple[str, float] = ("", 0.0)   # last status line: (status, when)

    def __enter__(self) -> "ProgressView":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        draw = self._draw.get(type(event))
        if draw is None:
            raise TypeError(f"ProgressView cannot draw {type(event).__name__}: not an event of kaggle_kit.events")
        draw(event)

    def elapsed_text(self) -> str:
        return f"{self.clock() - self.started:.0f}s"

    # -- bars ----------------------------------------------------------------------------------
    def _bar(self, name: str, description: str | None, total: int | None, completed: int) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(description or name, total=total)
        self.progress.update(self.tasks[name], total=total, completed=completed,
                             **({"description": description} if description else {}))

    def _drop(self, name: str) -> None:
        if name in self.tasks:
            self.progress.remove_task(self.tasks.pop(name))

    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False)

    # -- one method per event ------------------------------------------------------------------
    def _run(self, e: events.RunStarted) -> None:
        self._print(f"{'resuming' if e.resumed else 'run'} [bold]{escape(e.run_id)}[/] -> {escape(e.path)}")

    def _stage(self, e: events.Stage) -> None:
        self._print(f"[dim]{escape(e.message)}{' (from cache)' if e.cached else ''}[/]")

    def _progress(self, e: events.Progress) -> None:
        self._bar(e.task, e.task, e.total, e.done)
        if e.done >= e.total:
            self._drop(e.task)

    def _data(self, e: events.DataReady) -> None:
        left_out = f", {len(e.excluded)} unreadable left out" if e.excluded else ""
        self._print(f"[dim]{e.train_size} training images{left_out}, {e.splits} split(s)[/]")

    def _epoch_begin(self, e: events.EpochBegin) -> None:
        if self.phase is None or self.phase.key != (e.fold, e.phase):   # a phase's time counts from its first epoch
            now = self.clock()
            self.phase = _Phase(key=(e.fold, e.phase), start=now, last=now)
        self._bar("epoch", f"fold {e.fold_number} phase {e.phase} epoch {e.epoch}/{e.epochs}", e.steps, 0)

    def _batch(self, e: events.Batch) -> None:
        self._bar("epoch", None, e.steps, e.step)

    def _epoch_end(self, e: events.EpochEnd) -> None:
        # slow epochs (fine-tuning on images) get a line each; fast ones (a head on cached
        # features) are summed up in one line when the phase ends
        self._drop("epoch")
        now = self.clock()
        if self.phase is None or self.phase.key != (e.fold, e.phase):
            self.phase = _Phase(key=(e.fold, e.phase), start=now, last=now)
        ph = self.phase
        ph.add(e)
        if now - ph.last > SLOW_EPOCH_S:
            logs = e.logs
            self._print(f"  fold {e.fold_number} phase {e.phase} epoch {e.epoch:>2}/{e.epochs}  "
                        f"loss {logs.get('loss', math.nan):.4f}  val_score {logs.get('val_score', math.nan):.4f}  "
                        f"val_logloss {logs.get('val_logloss', math.nan):.4f}  lr {logs.get('lr', 0):.1e}")
        ph.last = now

    def _phase_end(self, e: events.PhaseEnd) -> None:
        ph = self.phase
        if ph is None or ph.key != (e.fold, e.phase) or ph.best is None:
            return
        name = "head on frozen backbone" if e.phase == 1 else "fine-tuning"
        self._print(f"  fold {e.fold_number} phase {e.phase} ({name}): {ph.epochs} epochs in "
                    f"{self.clock() - ph.start:.0f}s, best val_score {ph.best[0]:.4f} (epoch {ph.best[2]})")

    def _resumed(self, e: events.FoldResumed) -> None:
        self._print(f"  fold {e.fold_number}: resuming phase {e.phase} at epoch {e.epoch + 1}")

    def _skipped(self, e: events.FoldSkipped) -> None:
        self._print(f"  fold {e.fold_number}: already finished, kept")

    def _done(self, e: events.FoldDone) -> None:
        self._print(f"[green]fold {e.fold_number}/{e.folds} done[/]: score {e.score:.4f}  "
                    f"({self.elapsed_text()} so far)")

    def _plan(self, e: events.PlanReady) -> None:
        probed = f", probed {', '.join(e.probed)}" if e.probed else ", speeds from the probe cache"
        self._print(f"[bold]plan[/] for {escape(e.budget)} ({e.candidates} candidates{escape(probed)}): "
                    f"{escape(e.plan)}")
        stages = ", ".join(f"{k} {v:.0f}s" for k, v in e.stages.items() if v >= 0.5)
        self._print(f"[dim]  estimate {e.estimate_s:.0f}s of {e.budget_s:.0f}s: {e.spent_s:.0f}s spent planning, "
                    f"{escape(stages)}[/]")

    def _budget_stop(self, e: events.BudgetStop) -> None:
        what = "skipped" if e.epoch == 0 else f"stopped after epoch {e.epoch}/{e.epochs}"
        self._print(f"[yellow]  fold {e.fold_number} phase {e.phase} {what} to end within the budget[/] "
                    f"({e.left_s:.0f}s left for the fold; the best checkpoint is kept)")

    def _warned(self, e: events.Warned) -> None:
        self._print(f"[yellow]warning:[/] {escape(e.message)}")

    def _calibrated(self, e: events.Calibrated) -> None:
        what = f"temperature {e.temperature:.3f}, floor {e.floor:g}" if e.used else "not used (no gain in nested CV)"
        self._print(f"calibration: {what}; OOF log loss {e.raw_log_loss:.4f} -> {e.nested_log_loss:.4f} (nested), "
                    f"ECE {e.raw_ece:.4f} -> {e.nested_ece:.4f}")

    def _server(self, e: events.ServerReady) -> None:
        self._print(f"serving [bold]{escape(e.run_id)}[/] ({e.service}) on [bold]{escape(e.url)}[/]")
        self._print(f"try: curl -F image=@picture.png '{escape(e.url)}/predict?k={e.top_k}'   (Ctrl-C stops)")

    def _notebook(self, e: events.NotebookStatus) -> None:
        """A line when the status changes, and one a minute while it stays."""
        status, when = self._notebook_seen
        if e.status != status or e.seconds - when >= 60:
            self._notebook_seen = (e.status, e.seconds)
            self._print(f"notebook {escape(e.notebook)} version {e.version}: {escape(e.status)} ({e.seconds:.0f}s)")

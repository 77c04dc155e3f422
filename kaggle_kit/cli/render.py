"""Rendering the library's progress reports in the terminal (rich), with an ETA."""
from __future__ import annotations

import time
from typing import Any


class ProgressView:
    """Receives ``report(kind, **fields)`` calls from the trainer/predictor and draws them."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("eta"), TimeRemainingColumn(), console=console, transient=True)
        self.tasks: dict[str, Any] = {}
        self.started = time.perf_counter()

    def __enter__(self) -> "ProgressView":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _bar(self, name: str, description: str | None, total: int | None, completed: int) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(description or name, total=total)
        self.progress.update(self.tasks[name], total=total, completed=completed,
                             **({"description": description} if description else {}))

    def _drop(self, name: str) -> None:
        if name in self.tasks:
            self.progress.remove_task(self.tasks.pop(name))

    def __call__(self, kind: str, **f: Any) -> None:
        print_ = self.console.print
        if kind == "run":
            print_(f"{'resuming' if f['resumed'] else 'run'} [bold]{f['run_id']}[/] -> {f['path']}")
        elif kind == "stage":
            print_(f"[dim]{f['message']}[/]")
        elif kind == "progress":
            self._bar(f["task"], f["task"], f["total"], f["done"])
            if f["done"] >= f["total"]:
                self._drop(f["task"])
        elif kind == "epoch_begin":
            self._bar("epoch", f"fold {f['fold']} phase {f['phase']} epoch {f['epoch']}/{f['epochs']}",
                      f["steps"], 0)
        elif kind == "batch":
            self._bar("epoch", None, f["steps"], f["step"])
        elif kind == "epoch_end":
            logs = f["logs"]
            self._drop("epoch")
            print_(f"  fold {f['fold']} phase {f['phase']} epoch {f['epoch']:>2}/{f['epochs']}  "
                   f"loss {logs.get('loss', float('nan')):.4f}  val_score {logs.get('val_score', float('nan')):.4f}  "
                   f"val_logloss {logs.get('val_logloss', float('nan')):.4f}  lr {logs.get('lr', 0):.1e}")
        elif kind == "resume":
            print_(f"  fold {f['fold']}: resuming phase {f['phase']} at epoch {f['epoch'] + 1}")
        elif kind == "fold_skip":
            print_(f"  fold {f['fold']}: already finished, kept")
        elif kind == "fold_done":
            print_(f"[green]fold {f['fold'] + 1}/{f['folds']} done[/]: score {f['score']:.4f}  "
                   f"({time.perf_counter() - self.started:.0f}s so far)")
        elif kind == "warning":
            print_(f"[yellow]warning:[/] {f['message']}", markup=True)

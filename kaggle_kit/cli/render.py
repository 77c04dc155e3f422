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
        self.phase: dict[str, Any] = {}      # the phase in progress: epochs seen, best score, start time

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
            # slow epochs (fine-tuning on images) get a line each; fast ones (a head on cached
            # features) are summed up in one line when the phase ends
            logs = f["logs"]
            self._drop("epoch")
            ph = self.phase
            if ph.get("key") != (f["fold"], f["phase"]):
                ph.clear()
                ph.update(key=(f["fold"], f["phase"]), start=time.perf_counter(), epochs=0, best=None)
            ph["epochs"] += 1
            score = logs.get("val_score", float("nan"))
            if ph["best"] is None or (score, -logs.get("val_logloss", 0)) > ph["best"][:2]:
                ph["best"] = (score, -logs.get("val_logloss", 0), f["epoch"])
            if time.perf_counter() - ph.get("last", ph["start"]) > 10:
                print_(f"  fold {f['fold']} phase {f['phase']} epoch {f['epoch']:>2}/{f['epochs']}  "
                       f"loss {logs.get('loss', float('nan')):.4f}  val_score {score:.4f}  "
                       f"val_logloss {logs.get('val_logloss', float('nan')):.4f}  lr {logs.get('lr', 0):.1e}")
            ph["last"] = time.perf_counter()
        elif kind == "phase_end" and self.phase.get("key") == (f["fold"], f["phase"]):
            ph = self.phase
            name = "head on frozen backbone" if f["phase"] == 1 else "fine-tuning"
            print_(f"  fold {f['fold']} phase {f['phase']} ({name}): {ph['epochs']} epochs in "
                   f"{time.perf_counter() - ph['start']:.0f}s, best val_score {ph['best'][0]:.4f} "
                   f"(epoch {ph['best'][2]})")
        elif kind == "resume":
            print_(f"  fold {f['fold']}: resuming phase {f['phase']} at epoch {f['epoch'] + 1}")
        elif kind == "fold_skip":
            print_(f"  fold {f['fold']}: already finished, kept")
        elif kind == "fold_done":
            print_(f"[green]fold {f['fold'] + 1}/{f['folds']} done[/]: score {f['score']:.4f}  "
                   f"({time.perf_counter() - self.started:.0f}s so far)")
        elif kind == "warning":
            print_(f"[yellow]warning:[/] {f['message']}", markup=True)

"""The CLI's command registry: each command is a function registered with its arguments.

Command modules import nothing heavy at module level (TensorFlow, pandas, the kaggle client):
``kaggle-kit --help``, ``competitions`` and ``runs`` must answer in well under a second.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable

from kaggle_kit.registry import Registry

__all__ = ["Arg", "arg", "Command", "COMMANDS", "command", "run_args", "cv_text", "best_choice", "pick_and_say",
           "positive", "competition_arg", "console"]


@dataclass(frozen=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int | None]
    args: tuple[Arg, ...]


COMMANDS: Registry[Command] = Registry("command")


def command(name: str, help: str, *args: Arg) -> Callable:
    """Register ``fn(args) -> exit code`` as ``kaggle-kit <name>``."""

    def add(fn: Callable[[argparse.Namespace], int | None]) -> Callable:
        COMMANDS.add(name, Command(name, help, fn, args))
        return fn

    return add


def run_args() -> tuple[Arg, Arg]:
    """``--best`` / ``--run RUN_ID``: which run a command uses (see ``runs.pick_run``)."""
    return (arg("--best", action="store_true", help="the run with the best CV (the default)"),
            arg("--run", metavar="RUN_ID", help="a specific run"))


def cv_text(run: Any) -> str:
    """A run's CV as ``0.9120 [0.8970, 0.9250] n=5000 images`` (just the score for an older run)."""
    if run.cv_interval is not None:
        return run.cv_interval.text()
    return "-" if run.cv is None else f"{run.cv:.4f}"


def best_choice(project: Any, competition: Any) -> tuple[Any, list[str]]:
    """The run ``--best`` takes and the lines to show with it: why it was preferred (or why a
    leak-aware run could not be), and whether its lead over the next run is inside the noise."""
    from kaggle_kit.training.cv import lead_note
    from kaggle_kit.training.runs import choose_best

    choice = choose_best(project, competition)
    notes = [choice.note] if choice.note else []
    lead = lead_note(competition.scorer, choice.among)
    if lead is not None and lead.inside_noise:
        notes.append(lead.text())
    return choice.run, notes


def pick_and_say(project: Any, competition: Any, run_id: str | None, out: Any) -> Any:
    """``--run <id>``'s record, else the run ``--best`` takes, its notes printed first."""
    if run_id:
        from kaggle_kit.training.runs import load_run

        return load_run(project, competition.slug, run_id)
    run, notes = best_choice(project, competition)
    for note in notes:
        out.print(f"[yellow]{note}[/]")
    return run


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def competition_arg(required: bool = False) -> Arg:
    if required:
        return arg("competition", help="competition slug (see `kaggle-kit competitions`)")
    return arg("competition", nargs="?", default=None,
               help="competition slug; default: $KAGGLE_KIT_COMPETITION, the folder you are in, "
                    "or the project default set by `fetch`/`use`")


def console(stderr: bool = False):
    """A rich console; when output goes to a file or pipe, tables get 140 columns instead of 80."""
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=None if stream.isatty() else 140)

"""``kaggle-kit report``: write a run's offline HTML report (curves, confusion, mistakes, calibration)."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kaggle_kit.errors import KitError
from kaggle_kit.cli.base import arg, command, console

__all__ = []

if TYPE_CHECKING:
    from kaggle_kit.project import Project


@command("report", "write a run's HTML report: learning curves, confusion matrix, per-class scores, "
                   "most confident mistakes, calibration",
         arg("names", nargs="*", metavar="[COMPETITION] RUN_ID",
             help="the competition slug (default: $KAGGLE_KIT_COMPETITION, the folder you are in, or the "
                  "project default) and the run id; with --best, no run id"),
         arg("--best", action="store_true", help="the run with the best CV (the default without a run id)"),
         arg("--out", metavar="DIR", help="write the report here (default: <run folder>/report)"),
         arg("--mistakes", type=int, default=24, help="how many confident mistakes the gallery shows (default 24)"))
def report_cmd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kaggle_kit.project import Project
    from kaggle_kit.tools.report import write_report
    from kaggle_kit.training.runs import pick_run

    project = Project.find()
    slug, run_id = split_names(project, args.names)
    if args.best and run_id:
        raise KitError("pass --best or a run id, not both")
    competition = project.competition(slug)
    run = pick_run(project, competition, run_id)
    out = console()
    with out.status(f"writing the report of run {run.run_id} ..."):
        index = write_report(project, competition, run, out_dir=Path(args.out) if args.out else None,
                             mistakes=args.mistakes)
    out.print(f"wrote {index} (run {run.run_id}); open {index.resolve().as_uri()}")
    return 0


def split_names(project: Project, names: list[str]) -> tuple[str | None, str | None]:
    """``[slug] [run-id]``: a lone name is the competition when one is called that, else a run id."""
    if len(names) > 2:
        raise KitError(f"expected [COMPETITION] [RUN_ID], got {len(names)} names: {' '.join(names)}")
    if len(names) == 2:
        return names[0], names[1]
    if len(names) == 1:
        return (names[0], None) if names[0] in project.competitions else (None, names[0])
    return None, None

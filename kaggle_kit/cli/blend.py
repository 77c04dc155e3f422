"""``kaggle-kit blend``: fit ensemble weights on runs' out-of-fold predictions and save a blend record."""
from __future__ import annotations

import argparse

from kaggle_kit.cli.base import arg, command, competition_arg, console, positive

__all__ = []


@command("blend", "blend finished runs: weights fitted on their out-of-fold predictions, CV by nested folds",
         competition_arg(),
         arg("runs", nargs="*", metavar="RUN", help="run ids to blend (default: the best --top runs sharing folds)"),
         arg("--top", type=positive, metavar="N", help="blend the best N finished runs that share folds (default 5)"),
         arg("--method", choices=("auto", "equal", "scipy", "greedy"), default="auto",
             help="how weights are fitted; auto tries all three and keeps the best nested CV"),
         arg("--space", choices=("auto", "linear", "log"), default="auto",
             help="average probabilities (linear) or log-probabilities (log: a geometric mean); auto tries both"))
def blend_cmd(args: argparse.Namespace) -> int:
    from rich.table import Table

    from kaggle_kit.project import Project
    from kaggle_kit.training.blend import METHODS, SPACES
    from kaggle_kit.training.blending import blend_runs

    project = Project.find()
    comp = project.competition(args.competition)
    out = console()
    methods = METHODS if args.method == "auto" else (args.method,)
    spaces = SPACES if args.space == "auto" else (args.space,)
    with out.status(f"fitting blend weights on out-of-fold predictions of {comp.slug} ..."):
        result = blend_runs(project, comp, args.runs or None, top=args.top, methods=methods, spaces=spaces)
    rec = result.record
    for run_id, why in result.skipped.items():
        out.print(f"[yellow]left out {run_id}[/]: {why}")
    members = Table("member", f"its CV {comp.metric}", "weight", box=None)
    for run_id, weight in zip(rec.members, rec.weights):
        members.add_row(run_id, f"{rec.singles[run_id]:.4f}", f"{weight:.3f}")
    out.print(members)
    tried = Table("method/space", f"nested CV {comp.metric} [95%]", box=None)
    for c in rec.candidates:
        mark = " *" if (c["method"], c["space"]) == (rec.method, rec.space) else ""
        tried.add_row(f"{c['method']}/{c['space']}{mark}",
                      f"{c['score']:.4f} [{c['low']:.4f}, {c['high']:.4f}]")
    out.print(tried)
    best_single = max(rec.singles.values()) if comp.scorer.higher_is_better else min(rec.singles.values())
    out.print(f"[bold]{rec.run_id}[/]: nested CV {comp.metric} [bold]{rec.cv_interval.text()}[/] "
              f"({rec.method} weights, {rec.space} space; best single run {best_single:.4f}); "
              f"predict it with `kaggle-kit predict {comp.slug} --run {rec.run_id}`")
    return 0

"""Kaggle commands: fetch, submit, status. They render; the work is in fetch.py, submit.py, status.py.

All traffic goes through the official ``kaggle`` client (see :mod:`kaggle_kit.kaggle.client`), so the
commands work against kaggle.com or a compatible server (``python -m kaggle_local``).
"""
from __future__ import annotations

import argparse

from kaggle_kit.errors import KitError
from kaggle_kit.cli.base import arg, command, competition_arg, console, pick_and_say, positive, run_args

__all__ = []


def _project():
    from kaggle_kit.project import Project

    return Project.find()


def _slug(project, given: str | None) -> str:
    slug = given or project.default_slug()
    if not slug:
        raise KitError("no competition named and no default set: pass one, e.g. `kaggle-kit fetch cifar-10`")
    return slug


@command("fetch", "download a competition's data into data/<slug>/ (does nothing when it is complete)",
         competition_arg(),
         arg("--file", dest="files", action="append", metavar="NAME",
             help="download only this data file, e.g. sample_submission.csv (repeat it for more); for archives "
                  "too large to fetch whole"),
         arg("--force", action="store_true", help="download and extract again even if the data is complete"))
def fetch_cmd(args: argparse.Namespace) -> int:
    from kaggle_kit.api import fetch

    project = _project()
    slug = _slug(project, args.competition)
    out = console()
    with out.status(f"fetching {slug} ..."):
        result = fetch(slug, project=project, force=args.force, files=args.files)
    where = result.path
    if result.action == "files":
        kept = result.files - len(result.names)
        out.print(f"{slug}: {len(result.names)} file(s) downloaded into {where}"
                  + (f": {', '.join(result.names)}" if result.names else "")
                  + (f" ({kept} already there; --force downloads them again)" if kept else ""))
    elif result.action == "in_place":
        out.print(f"{slug}: using the Kaggle notebook's data in place at {where}")
    elif result.action == "present":
        out.print(f"{slug}: already complete at {where} (use --force to download again)")
    else:
        out.print(f"{slug}: {result.files} files ({result.archive_bytes:,} bytes) extracted into {where}")
    out.print(f"default competition: {slug}")
    return 0


@command("submit", "upload a run's predictions to Kaggle (or, with --notebook, push a notebook that makes them) "
         "and record the submission in the run",
         competition_arg(),
         *run_args(),
         arg("-m", "--message", help="submission description (default: run id, backbone and CV score)"),
         arg("--file", metavar="CSV", help="submit this CSV for the run instead of the run's own predictions"),
         arg("--dry-run", action="store_true", help="build and validate the CSV, upload nothing"),
         arg("--notebook", action="store_true",
             help="a code competition: package the run as a dataset, push an offline inference notebook, "
                  "wait for its run and submit that version"),
         arg("--accelerator", choices=("none", "gpu", "gpu-p100", "tpu"), default="none",
             help="what the notebook runs on (--notebook; default none: CPU)"),
         arg("--wait-timeout", type=float, metavar="S",
             help="give up waiting for the notebook after S seconds (--notebook; default: the competition's limit)"))
def submit_cmd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.submit import needs_notebook_message, submit_run

    if args.best and args.run:
        raise KitError("pass --best or --run <id>, not both")
    project = _project()
    competition = project.competition(args.competition)
    if competition.code_competition != args.notebook:
        raise KitError(needs_notebook_message(competition.slug, code=competition.code_competition))
    out = console()
    run = pick_and_say(project, competition, args.run, out)
    if args.notebook:
        return _submit_notebook(args, project, competition, run, out)
    with out.status(f"submitting run {run.run_id} to {competition.slug} ..."):
        result = submit_run(project, competition, run, client=KaggleClient(), message=args.message,
                            dry_run=args.dry_run, csv=Path(args.file) if args.file else None)
    if result.dry_run:
        out.print(f"dry run: {result.file} is valid; it would be submitted as {result.message!r}")
    else:
        out.print(f"submitted {result.file} to {competition.slug}: ref {result.ref}, {result.message!r}")
        out.print(f"see the score with `kaggle-kit status {competition.slug} --wait`")
    return 0


def _submit_notebook(args: argparse.Namespace, project, competition, run, out) -> int:
    from kaggle_kit.errors import NotebookFailed
    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.code_submit import submit_notebook
    from kaggle_kit.progress import ProgressView

    if args.file or args.dry_run:
        raise KitError("--notebook takes neither --file nor --dry-run: Kaggle runs the notebook to make the CSV")
    out.print(f"{competition.slug} is a code competition: submitting run {run.run_id} as a notebook "
              f"(limit {competition.notebook_hours:g} h, internet off)")
    try:
        with ProgressView(out) as view:
            result = submit_notebook(project, competition, run, client=KaggleClient(), message=args.message,
                                     accelerator=args.accelerator, report=view, timeout=args.wait_timeout)
    except NotebookFailed as e:
        err = console(stderr=True)
        if e.log_tail:
            err.print(f"last {len(e.log_tail)} lines of the notebook's log:", markup=False)
            for line in e.log_tail:
                err.print(f"  {line}", markup=False, highlight=False)
        raise
    out.print(f"notebook {result.kernel} version {result.version} ran in {result.seconds:.0f}s; submitted to "
              f"{competition.slug}: ref {result.ref}, {result.message!r}")
    out.print(f"see the score with `kaggle-kit status {competition.slug} --wait`")
    return 0


@command("status", "my submissions and scores, submissions left today, and the leaderboard",
         competition_arg(),
         arg("--wait", action="store_true", help="poll until pending submissions are scored"),
         arg("--timeout", type=float, default=600.0, metavar="S", help="give up waiting after S seconds (600)"),
         arg("--top", type=positive, default=10, metavar="N", help="leaderboard rows to show (10)"))
def status_cmd(args: argparse.Namespace) -> int:
    from kaggle_kit.kaggle.client import KaggleClient
    from kaggle_kit.kaggle.status import competition_status, wait_for_scores

    project = _project()
    slug = _slug(project, args.competition)
    client = KaggleClient()
    out = console()
    if args.wait:
        with out.status(f"waiting for {slug} scores (up to {args.timeout:.0f} s) ..."):
            report = wait_for_scores(project, slug, client=client, top=args.top, timeout=args.timeout)
    else:
        report = competition_status(project, slug, client=client, top=args.top)
    render_status(out, report)
    if args.wait and report.pending:
        raise KitError(f"{slug}: {report.pending} submission(s) still pending after {args.timeout:.0f} s")
    return 0


def render_status(out, report) -> None:
    from rich.table import Table

    def fmt(score: float | None) -> str:
        return "" if score is None else f"{score:.5f}"

    def when(date) -> str:
        return date.strftime("%Y-%m-%d %H:%M") if date else ""

    colour = {"complete": "green", "pending": "yellow", "error": "red"}
    mine = Table(title=f"my submissions to {report.slug}", box=None, title_justify="left")
    for name in ("ref", "date (UTC)", "status", "public", "private"):
        mine.add_column(name, no_wrap=True)
    mine.add_column("run / description", overflow="fold")
    for row in report.submissions:
        s = row.info
        mine.add_row(str(s.ref), when(s.date), f"[{colour.get(s.status, 'white')}]{s.status}[/]",
                     fmt(s.public_score), fmt(s.private_score), row.run_id or s.description)
    if report.submissions:
        out.print(mine)
        for row in report.submissions:
            if row.info.status == "error":
                out.print(f"[red]{row.info.ref} failed:[/] {row.info.error or '(no reason given)'}")
    else:
        out.print(f"no submissions to {report.slug} yet")
    if report.limits is not None:
        out.print(f"submissions left today: {report.limits.allowed_now} ({report.limits.today} made today)")
    board = Table(title="public leaderboard", box=None, title_justify="left")
    for name in ("rank", "team", "score", "date (UTC)"):
        board.add_column(name, no_wrap=name != "team", overflow="fold")
    for r in report.leaderboard:
        board.add_row(str(r.rank), r.team_name, fmt(r.score), when(r.date))
    out.print(board)
    if report.my_rank:
        of = f" of {report.team_count} teams" if report.team_count else ""
        out.print(f"my position: {report.my_rank}{of}")
    else:
        out.print("my position: not on the leaderboard yet")

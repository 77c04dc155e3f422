"""``kaggle-kit new <slug>``: write a competition plugin from an unzipped data folder, and say what
was inferred, what to check, and whether the plugin works. ``kaggle-kit check <slug>``: any plugin
checked against its data, one line per problem."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from kaggle_kit.cli.base import arg, command, competition_arg, console

__all__ = ["new", "check", "shown", "link_hint", "print_check"]

__all__ = []


def shown(path: Path) -> str:
    """``path`` relative to the current folder when it is below it, else as given."""
    try:
        return Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(Path.cwd()))).as_posix()
    except ValueError:
        return str(path)


def link_hint(data: Path, expected: Path) -> str | None:
    """What to do when the plugin's paths are relative to ``data`` but training reads ``expected``; never
    an ``ln -s`` into an existing folder (it would land inside it)."""
    if Path(data).resolve() == expected.resolve():
        return None
    if expected.exists() or expected.is_symlink():
        return (f"training reads {shown(expected)}, which already exists and is not {shown(data)}: the plugin's "
                f"paths are relative to {shown(data)}; move its files into {shown(expected)} (or run "
                f"`kaggle-kit new` on {shown(expected)})")
    return (f"training reads {shown(expected)}: move the folder there, or `mkdir -p {shown(expected.parent)} && "
            f"ln -s {os.path.abspath(data)} {shown(expected)}`")


def print_check(report, out) -> None:
    """Each problem and warning of a :class:`~kaggle_kit.tools.scaffold.check.CheckReport`, one line each."""
    from rich.markup import escape

    for line in report.problems:
        out.print(f"[bold red]error:[/] {escape(line)}")
    for line in report.warnings:
        out.print(f"[yellow]warning:[/] {escape(line)}")


@command(
    "new", "write competitions/<slug>.py from an unzipped competition folder (layout, classes, metric, submission)",
    arg("slug", help="the competition's slug, as in its Kaggle URL (e.g. pistolas-vs-smartphones)"),
    arg("--data", type=Path, default=None, help="the unzipped competition folder (default: data/<slug>)"),
    arg("--force", action="store_true", help="overwrite an existing competitions/<slug>.py"),
)
def new(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from kaggle_kit.errors import KitError
    from kaggle_kit.project import Project
    from kaggle_kit.tools.scaffold import counts_text, scaffold

    project = Project.find()
    data = args.data or project.data_root(args.slug)
    if not data.is_dir():
        raise KitError(f"{data}: folder not found; unzip the competition's files there or pass --data <folder>")
    expected = project.data_root(args.slug)
    result = scaffold(args.slug, data, project.root / "competitions", force=args.force,
                      other_plugin_folders=project.plugin_folders(), data_root=expected, shown=shown)
    out = console()
    out.print(f"wrote [bold]{escape(shown(result.path))}[/] from {escape(shown(result.spec.data))}")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for name in ("", "field", "value", "how"):
        table.add_column(name, overflow="fold")
    for f in result.spec.findings:
        table.add_row("[yellow]check[/]" if f.check else "[green]ok[/]", f.field, escape(f.value),
                      escape(f.reason.removeprefix("inferred from ")))
    out.print(table)
    check = result.spec.to_check
    if check:
        out.print(f"[yellow]{len(check)} guess(es) to confirm[/] (marked TO CHECK in the file): "
                  f"{', '.join(f.field for f in check)}")
    v = result.validation
    if not v.ok:
        err = console(stderr=True)
        err.print(f"[bold red]error:[/] {escape(shown(result.path))} was written but does not work yet "
                  f"({len(v.problems)} problem(s) below; fix the file or the folder, then `kaggle-kit check "
                  f"{args.slug}`)")
        print_check(v, err)
        return 1
    print_check(v, out)
    out.print(f"[green]works:[/] loaded it and listed {v.train_images} training images "
              f"({escape(counts_text(v.class_counts))}) and {v.test_images} test images")
    hint = link_hint(result.spec.data, expected)
    if hint:
        out.print(f"[yellow]note:[/] {escape(hint)}")
    out.print(f"next: kaggle-kit check {args.slug}\n      kaggle-kit train {args.slug} --recipe fast")
    return 0


@command(
    "check", "check a competition plugin against its data: layout, classes, test ids, columns, metric, recipes",
    competition_arg(),
    arg("--data", type=Path, default=None, help="the competition's data folder (default: data/<slug>)"),
)
def check(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from kaggle_kit.project import Project
    from kaggle_kit.tools.scaffold import check_plugin

    project = Project.find()
    comp = project.competition(args.competition)
    report = check_plugin(comp, args.data or project.data_root(comp.slug), shown)
    out = console()
    print_check(report, out)
    if not report.ok:
        out.print(f"[bold red]{len(report.problems)} problem(s)[/] in {escape(comp.slug)} "
                  f"({escape(shown(Path(comp.source)))} against {escape(shown(args.data or project.data_root(comp.slug)))})")
        return 1
    out.print(f"[green]ok:[/] {escape(report.summary)}")
    return 0

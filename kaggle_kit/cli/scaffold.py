"""``kaggle-kit new <slug>``: write a competition plugin from an unzipped data folder, and say what
was inferred, what to check, and whether the plugin works."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from kaggle_kit.cli.base import arg, command, console

__all__ = []


def shown(path: Path) -> str:
    """``path`` relative to the current folder when it is below it, else as given."""
    try:
        return Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(Path.cwd()))).as_posix()
    except ValueError:
        return str(path)


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
    result = scaffold(args.slug, data, project.root / "competitions", force=args.force,
                      other_plugin_folders=project.plugin_folders())
    out = console()
    out.print(f"wrote [bold]{escape(shown(result.path))}[/] from {escape(shown(data))}")
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
        console(stderr=True).print(f"[bold red]error:[/] {escape(shown(result.path))} was written but does "
                                   f"not work yet: {escape(v.error or '')}")
        return 1
    out.print(f"[green]works:[/] loaded it and listed {v.train_images} training images "
              f"({escape(counts_text(result.spec.class_counts))}) and {v.test_images} test images")
    expected = project.data_root(args.slug)
    if Path(data).resolve() != expected.resolve():
        out.print(f"[yellow]note:[/] training reads {escape(shown(expected))}: move the folder there, or "
                  f"`mkdir -p {escape(shown(expected.parent))} && "
                  f"ln -s {escape(os.path.abspath(data))} {escape(shown(expected))}`")
    out.print(f"next: kaggle-kit competitions\n      kaggle-kit train {args.slug} --limit 200 --folds 2")
    return 0

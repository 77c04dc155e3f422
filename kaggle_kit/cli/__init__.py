"""``kaggle-kit``: a thin command-line layer over the Python API. Errors print as one line."""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import KitError
from .base import COMMANDS, console

# Each module registers its commands with @command; all of them import lazily.
COMMAND_MODULES = (
    "kaggle_kit.cli.core",
)


def build_parser() -> argparse.ArgumentParser:
    for name in COMMAND_MODULES:
        importlib.import_module(name)
    parser = argparse.ArgumentParser(
        prog="kaggle-kit",
        description="Kaggle image-classification workflow: fetch -> train -> submit -> status.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        cmd = COMMANDS.get(name)
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        for a in cmd.args:
            p.add_argument(*a.flags, **a.options)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KitError as e:
        console(stderr=True).print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:
        console(stderr=True).print("interrupted; finished work is saved (resume with `kaggle-kit train --resume <run-id>`)")
        return 130


if __name__ == "__main__":
    sys.exit(main())

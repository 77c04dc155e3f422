"""``kaggle-kit``: a thin command-line layer over the Python API. Errors print as one line."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from kaggle_kit.errors import KitError
from kaggle_kit import interrupt
from kaggle_kit.cli.base import COMMANDS, console

__all__ = ["COMMAND_MODULES", "quiet_libraries", "build_parser", "main"]

# Each module registers its commands with @command; all of them import lazily.
COMMAND_MODULES = (
    "kaggle_kit.cli.core",
    "kaggle_kit.cli.blend",
    "kaggle_kit.cli.export",
    "kaggle_kit.cli.scaffold",
    "kaggle_kit.cli.serve",
    "kaggle_kit.cli.kaggle",
    "kaggle_kit.cli.report",
    "kaggle_kit.cli.cache",
    "kaggle_kit.cli.audit",
)


def quiet_libraries() -> None:
    """TensorFlow's C++ start-up chatter (see :mod:`kaggle_kit.cli.stderr` for the lines it writes
    before absl starts), its tf.function retracing notices (predicting batches of several sizes),
    absl's and Keras' notices are not for the user; errors still show."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)   # absl's Python warnings (h5 saving, ...)
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")


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
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    command_line = argv is None   # the real command line, not a test calling main([...]) in-process
    if command_line:
        from kaggle_kit.cli.stderr import filter_native_stderr

        filter_native_stderr()
    quiet_libraries()
    args = build_parser().parse_args(argv)
    try:
        with interrupt.counting():
            return int(args._run(args) or 0)
    except KitError as e:
        from rich.text import Text

        console(stderr=True).print(Text("error: ", style="bold red") + Text(str(e)))
        return 1
    except KeyboardInterrupt as e:
        hint = str(e) if isinstance(e, interrupt.Interrupted) and str(e) else "interrupted; finished work is saved"
        console(stderr=True).print(hint, markup=False)
        if command_line and interrupt.presses() >= 2:   # pressed twice: skip TensorFlow's seconds of teardown
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Errors the kit raises on purpose. The CLI prints their message as one line, no traceback."""
from __future__ import annotations

__all__ = ["KitError", "DataError", "SubmissionError", "KaggleError", "NotebookFailed", "DiskFullError", "ConfigError"]


class KitError(Exception):
    """Base of every expected failure: bad input, a missing file, a refused upload."""


class DataError(KitError):
    """The competition's files are missing, in the wrong layout or unreadable."""


class SubmissionError(KitError):
    """A submission CSV that would be rejected (missing ids, bad labels, bad probabilities)."""


class KaggleError(KitError):
    """The Kaggle API (or a compatible server) refused or failed a call."""


class NotebookFailed(KaggleError):
    """A pushed notebook's run on Kaggle failed; ``log_tail`` holds the last lines of its log."""

    def __init__(self, message: str, *, log_tail: list[str]) -> None:
        super().__init__(message)
        self.log_tail = list(log_tail)


class DiskFullError(KitError):
    """Writing a file failed because the disk is full; the previous file is intact."""


class ConfigError(KitError):
    """A training option with an unknown name or a value out of range; ``field`` names the option."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field

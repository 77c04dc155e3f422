"""The server's own CSV parser for submissions and solutions: small, and independent of kaggle_kit's
(the kit validates with pandas; this reads with :mod:`csv`), so that it can catch the kit's bugs.

What it accepts, as Kaggle does:
- UTF-8 text, with or without a byte-order mark, any line ending; blank lines are skipped;
- whitespace around a header name or a value is ignored;
- the header is exactly the format's columns, in that order; every row has one value per column;
- rows may come in any order (the scorer matches them to the solution by id);
- ``name`` labels are class names, ``index`` labels the class's position (``0``, ``1``, ...);
  ``proba`` values are finite, non-negative numbers, one per class; a row need not sum to 1
  (log loss rescales it), but it may not be all zeros.

Example:
    >>> fmt = Format(id_column="id", labels="name", classes=("cat", "dog"))
    >>> ids, proba = fmt.parse(["id", "label"], [(2, ["7", "dog"]), (3, ["8", "cat"])], "sub.csv")
    >>> ids, proba.tolist()
    (['7', '8'], [[0.0, 1.0], [1.0, 0.0]])
    >>> fmt.parse(["id", "class"], [], "sub.csv")
    Traceback (most recent call last):
    ...
    kaggle_local.errors.SubmissionRejected: sub.csv: columns are ['id', 'class'], expected ['id', 'label']
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from kaggle_local.errors import SubmissionRejected

__all__ = ["LABELS", "Format", "Row", "read_table"]

LABELS = ("name", "index", "proba")
Row = tuple[int, list[str]]          # (line number in the file, stripped values)


def read_table(path: Path, shown: str) -> tuple[list[str], list[Row]]:
    """The header and the non-blank rows of a CSV file, every value stripped of surrounding whitespace."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SubmissionRejected(f"{shown}: not a readable CSV (not UTF-8 text)") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, [value.strip() for value in row]) for row in reader
                if any(value.strip() for value in row)]
    except csv.Error as e:
        raise SubmissionRejected(f"{shown}: not a readable CSV (line {reader.line_num}: {e})") from None
    if not rows:
        raise SubmissionRejected(f"{shown}: the file is empty")
    return rows[0][1], rows[1:]


@dataclass(frozen=True, kw_only=True)
class Format:
    """A competition's submission format: the id column, then a label column or one column per class."""

    id_column: str
    labels: Literal["name", "index", "proba"]
    classes: tuple[str, ...]             # class names; for ``proba`` also the probability columns
    label_column: str = "label"

    def columns(self) -> list[str]:
        if self.labels == "proba":
            return [self.id_column, *self.classes]
        return [self.id_column, self.label_column]

    def parse(self, header: Sequence[str], rows: Sequence[Row], shown: str) -> tuple[list[str], np.ndarray]:
        """(ids, probabilities in class order) of a table; labels become one-hot rows.

        Raises :class:`SubmissionRejected`, naming ``shown`` and the first wrong line.
        """
        want = self.columns()
        if list(header) != want:
            raise SubmissionRejected(f"{shown}: columns are {list(header)}, expected {want}")
        for line, values in rows:
            if len(values) != len(want):
                raise SubmissionRejected(f"{shown}: line {line} has {len(values)} value(s), expected {len(want)}")
        ids = [values[0] for _, values in rows]
        if self.labels == "proba":
            return ids, self._probabilities(rows, shown)
        lookup = ({str(i): i for i in range(len(self.classes))} if self.labels == "index"
                  else {name: i for i, name in enumerate(self.classes)})
        bad = sorted({values[1] for _, values in rows if values[1] not in lookup})
        if bad:
            raise SubmissionRejected(f"{shown}: invalid label(s) {', '.join(bad[:5])}")
        proba = np.zeros((len(rows), len(self.classes)))
        proba[np.arange(len(rows)), [lookup[values[1]] for _, values in rows]] = 1.0
        return ids, proba

    def _probabilities(self, rows: Sequence[Row], shown: str) -> np.ndarray:
        out = np.zeros((len(rows), len(self.classes)))
        for n, (line, values) in enumerate(rows):
            for k, text in enumerate(values[1:]):
                try:
                    out[n, k] = float(text)
                except ValueError:
                    raise SubmissionRejected(f"{shown}: probability columns must be numbers "
                                             f"(line {line}: {text!r})") from None
                if not math.isfinite(out[n, k]):
                    raise SubmissionRejected(f"{shown}: probabilities must be finite numbers (line {line}: {text!r})")
                if out[n, k] < 0:
                    raise SubmissionRejected(f"{shown}: probabilities must not be negative (line {line}: {text!r})")
            if not out[n].any():
                raise SubmissionRejected(f"{shown}: line {line}: every probability is 0, nothing to rescale")
        return out

"""Score a submission CSV against a competition's ``solution.csv``, split into public and private rows.

The format and metric come from the kit's competition plugin when there is one (the same
``read_as_proba`` the kit validates with); otherwise from the solution's columns: an id and one
label column is scored by accuracy, an id and several numeric columns by log loss.

Rows are public or private by the solution's ``Usage`` column (``Public``/``Private``; other
values are scored in neither) or, without one, by a 50/50 split seeded with the slug.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "solution.csv").write_text("id,label\\n1,cat\\n2,dog\\n3,cat\\n4,dog\\n")
    >>> _ = (folder / "sub.csv").write_text("id,label\\n1,cat\\n2,dog\\n3,dog\\n4,dog\\n")
    >>> scorer = Scorer.load("pets", folder / "solution.csv", plugins={})
    >>> scorer.metric.name, scorer.score(folder / "sub.csv").overall
    ('accuracy', 0.75)
"""
from __future__ import annotations

import csv
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import KitError, SubmissionError
from kaggle_kit.layouts import NoTest
from kaggle_kit.metrics import Metric
from kaggle_kit.prediction.submission import read_as_proba

USAGE_COLUMN = "Usage"


@dataclass(frozen=True)
class Scores:
    public: float | None
    private: float | None
    overall: float


@dataclass(frozen=True)
class Scorer:
    competition: Competition
    ids: tuple[str, ...]
    truth: np.ndarray          # class index per solution row
    public: np.ndarray         # bool per row
    private: np.ndarray        # bool per row

    @property
    def metric(self) -> Metric:
        return self.competition.scorer

    @classmethod
    def load(cls, slug: str, solution: Path, plugins: Mapping[str, Competition]) -> "Scorer":
        """Read ``solution`` for ``slug``; ``plugins`` maps slugs to the kit's competition plugins."""
        header, rows = _read_rows(solution)
        usage = None
        if USAGE_COLUMN in header:
            at = header.index(USAGE_COLUMN)
            usage = np.array([r[at].strip().lower() for r in rows])
            header = header[:at] + header[at + 1:]
            rows = [r[:at] + r[at + 1:] for r in rows]
        competition = plugins.get(slug) or _infer_competition(slug, solution, header, rows)
        with tempfile.TemporaryDirectory() as tmp:
            clean = Path(tmp) / solution.name
            with clean.open("w", newline="") as fh:
                csv.writer(fh).writerows([header, *rows])
            try:
                ids, proba = read_as_proba(competition, clean)
            except SubmissionError as e:
                raise KitError(str(e).replace(str(clean), str(solution))) from None
        n = len(ids)
        if usage is not None:
            public, private = usage == "public", usage == "private"
        else:
            order = np.random.default_rng(zlib.crc32(slug.encode())).permutation(n)
            public = np.zeros(n, dtype=bool)
            public[order[: (n + 1) // 2]] = True
            private = ~public
        return cls(competition=competition, ids=tuple(ids), truth=proba.argmax(axis=1),
                   public=public, private=private)

    def score(self, path: Path, shown_as: str | None = None) -> Scores:
        """Score one submission file; :class:`SubmissionError` (one line, naming ``shown_as``) if malformed."""
        shown = shown_as or Path(path).name
        try:
            ids, proba = read_as_proba(self.competition, path)
        except SubmissionError as e:
            raise SubmissionError(str(e).replace(str(path), shown)) from None
        position = {id_: i for i, id_ in enumerate(ids)}
        if len(position) != len(ids):
            raise SubmissionError(f"{shown}: {len(ids) - len(position)} id(s) appear more than once")
        missing = [i for i in self.ids if i not in position]
        if missing:
            raise SubmissionError(f"{shown}: {len(missing)} id(s) missing, e.g. {', '.join(missing[:5])}")
        if len(ids) != len(self.ids):
            extra = sorted(set(ids) - set(self.ids))
            raise SubmissionError(f"{shown}: {len(extra)} unknown id(s), e.g. {', '.join(extra[:5])}")
        aligned = proba[[position[i] for i in self.ids]]
        if not np.isfinite(aligned).all():
            raise SubmissionError(f"{shown}: probabilities must be finite numbers")
        return Scores(public=self._part(aligned, self.public), private=self._part(aligned, self.private),
                      overall=self.metric(self.truth, aligned))

    def _part(self, proba: np.ndarray, mask: np.ndarray) -> float | None:
        return self.metric(self.truth[mask], proba[mask]) if mask.any() else None


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        table = list(csv.reader(fh))
    if len(table) < 2:
        raise KitError(f"{path}: a solution needs a header and at least one row")
    return table[0], table[1:]


def _infer_competition(slug: str, path: Path, header: list[str], rows: list[list[str]]) -> Competition:
    """No plugin: id + one label column -> accuracy on names; id + numeric columns -> log loss."""
    if len(header) == 2:
        classes = tuple(sorted({r[1] for r in rows}))
        if len(classes) < 2:
            raise KitError(f"{path}: the label column {header[1]!r} holds fewer than two classes")
        return Competition(slug=slug, classes=classes, metric="accuracy", train=NoTest(),
                           submission=Submission(id_column=header[0], label_column=header[1], labels="name"))
    if len(header) > 2:
        try:
            np.asarray([r[1:] for r in rows], dtype=np.float64)
        except ValueError:
            raise KitError(f"{path}: with no plugin for {slug}, columns after {header[0]!r} must be "
                           "numeric class probabilities (log loss) or one label column (accuracy)") from None
        return Competition(slug=slug, classes=tuple(header[1:]), metric="log_loss", train=NoTest(),
                           submission=Submission(id_column=header[0], labels="proba"))
    raise KitError(f"{path}: expected an id column and label column(s), found {header}")

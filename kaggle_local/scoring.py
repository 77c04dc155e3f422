"""Score a submission CSV against a competition's ``solution.csv``, split into public and private rows.

The format and metric are the competition's facts (the scoring keys of its ``competition.json``):

    metric        accuracy | log_loss | f1_macro      (default: log_loss for proba, else accuracy)
    id_column     the id column                        (default: the solution's first column)
    labels        name | index | proba                 (default: name for one label column, else proba)
    label_column  with name/index: the label column    (default: the solution's second column)
    classes       the class names, in order: the meaning of an index label, the probability
                  columns; required for index         (default: the solution's labels, sorted,
                                                        or its probability columns)

The solution is a table of that same format (plus an optional ``Usage`` column), read with the
same parser (:mod:`kaggle_local.submission`). Rows are public or private by ``Usage``
(``Public``/``Private``; other values are scored in neither) or, without one, by a 50/50 split
seeded with the slug.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "solution.csv").write_text("id,label\\n1,cat\\n2,dog\\n3,cat\\n4,dog\\n")
    >>> _ = (folder / "sub.csv").write_text("id,label\\n4,dog\\n3,dog\\n2,dog\\n1,cat\\n")
    >>> scorer = Scorer.load("pets", folder / "solution.csv")
    >>> scorer.metric.name, scorer.score(folder / "sub.csv").overall
    ('accuracy', 0.75)
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kaggle_local.errors import ServerError, SubmissionRejected
from kaggle_local.metrics import METRICS, ServerMetric
from kaggle_local.submission import LABELS, Format, Row, read_table

__all__ = ["SCORING_KEYS", "USAGE_COLUMN", "Scorer", "Scores", "check_facts"]

USAGE_COLUMN = "Usage"
SCORING_KEYS = ("metric", "id_column", "labels", "label_column", "classes")


@dataclass(frozen=True)
class Scores:
    public: float | None
    private: float | None
    overall: float


@dataclass(frozen=True, kw_only=True)
class Scorer:
    format: Format
    metric: ServerMetric
    ids: tuple[str, ...]       # solution ids, in solution order
    truth: np.ndarray          # class index per solution row
    public: np.ndarray         # bool per row
    private: np.ndarray        # bool per row

    @classmethod
    def load(cls, slug: str, solution: Path, facts: Mapping[str, Any] | None = None,
             where: str = "competition.json") -> "Scorer":
        """Read ``solution`` for ``slug``; ``facts`` are the scoring keys (``where`` names their file)."""
        facts = check_facts(facts or {}, where)
        header, rows = read_table(solution, str(solution))
        usage = None
        if USAGE_COLUMN in header:
            at = header.index(USAGE_COLUMN)
            usage = np.array([values[at].lower() if at < len(values) else "" for _, values in rows])
            header = header[:at] + header[at + 1:]
            rows = [(line, values[:at] + values[at + 1:]) for line, values in rows]
        fmt = _format(facts, header, rows, solution, where)
        metric = METRICS[facts.get("metric") or ("log_loss" if fmt.labels == "proba" else "accuracy")]
        ids, proba = fmt.parse(header, rows, str(solution))
        if len(set(ids)) != len(ids):
            raise ServerError(f"{solution}: {len(ids) - len(set(ids))} id(s) appear more than once")
        n = len(ids)
        if usage is not None:
            public, private = usage == "public", usage == "private"
        else:
            order = np.random.default_rng(zlib.crc32(slug.encode())).permutation(n)
            public = np.zeros(n, dtype=bool)
            public[order[: (n + 1) // 2]] = True
            private = ~public
        return cls(format=fmt, metric=metric, ids=tuple(ids), truth=proba.argmax(axis=1),
                   public=public, private=private)

    def score(self, path: Path, shown_as: str | None = None) -> Scores:
        """Score one submission file; :class:`SubmissionRejected` (one line, naming ``shown_as``) if malformed."""
        shown = shown_as or Path(path).name
        header, rows = read_table(path, shown)
        ids, proba = self.format.parse(header, rows, shown)
        position = {id_: i for i, id_ in enumerate(ids)}
        if len(position) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise SubmissionRejected(f"{shown}: {len(ids) - len(position)} id(s) appear more than once, "
                                     f"e.g. {', '.join(repeated[:5])}")
        missing = [i for i in self.ids if i not in position]
        if missing:
            raise SubmissionRejected(f"{shown}: {len(missing)} id(s) missing, e.g. {', '.join(missing[:5])}")
        extra = sorted(set(ids) - set(self.ids))
        if extra:
            raise SubmissionRejected(f"{shown}: {len(extra)} unknown id(s), e.g. {', '.join(extra[:5])}")
        aligned = proba[[position[i] for i in self.ids]]
        return Scores(public=self._part(aligned, self.public), private=self._part(aligned, self.private),
                      overall=self.metric(self.truth, aligned))

    def _part(self, proba: np.ndarray, mask: np.ndarray) -> float | None:
        return self.metric(self.truth[mask], proba[mask]) if mask.any() else None


def check_facts(facts: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The scoring keys of ``facts``, checked for their types and names (one line naming ``where``)."""
    out = {k: facts[k] for k in SCORING_KEYS if facts.get(k) is not None}
    for key in ("metric", "id_column", "labels", "label_column"):
        if key in out and not (isinstance(out[key], str) and out[key].strip()):
            raise ServerError(f"{where}: {key!r} must be a non-empty string, not {out[key]!r}")
    if "metric" in out and out["metric"] not in METRICS:
        raise ServerError(f"{where}: unknown metric {out['metric']!r}; known: {', '.join(METRICS)}")
    if "labels" in out and out["labels"] not in LABELS:
        raise ServerError(f"{where}: 'labels' must be one of {', '.join(LABELS)}, not {out['labels']!r}")
    if "classes" in out:
        classes = out["classes"]
        if (not isinstance(classes, (list, tuple)) or len(classes) < 2 or len(set(classes)) != len(classes)
                or not all(isinstance(c, str) and c.strip() for c in classes)):
            raise ServerError(f"{where}: 'classes' must be a list of at least two different names")
        out["classes"] = tuple(c.strip() for c in classes)
    if out.get("labels") == "index" and "classes" not in out:
        raise ServerError(f"{where}: labels 'index' needs 'classes' (the class of each index, in order)")
    return out


def _format(facts: Mapping[str, Any], header: Sequence[str], rows: Sequence[Row], solution: Path,
            where: str) -> Format:
    """The submission format: the facts, and the solution's columns for what they leave out."""
    if len(header) < 2:
        raise ServerError(f"{solution}: expected an id column and label column(s), found {list(header)}")
    labels = facts.get("labels") or ("name" if len(header) == 2 else "proba")
    id_column = facts.get("id_column", header[0])
    if labels == "proba":
        if "labels" not in facts and "classes" not in facts and not _numeric(rows):
            raise ServerError(f"{solution}: columns after {header[0]!r} must be numeric class probabilities "
                              f"(log loss) or one label column (accuracy); or state the format in {where}")
        return Format(id_column=id_column, labels="proba", classes=facts.get("classes", tuple(header[1:])))
    label_column = facts.get("label_column", header[1])
    classes = facts.get("classes")
    if classes is None:
        at = list(header).index(label_column) if label_column in header else 1
        classes = tuple(sorted({values[at] for _, values in rows if at < len(values)}))
        if len(classes) < 2:
            raise ServerError(f"{solution}: the label column {label_column!r} holds fewer than two classes")
    return Format(id_column=id_column, labels=labels, classes=classes, label_column=label_column)


def _numeric(rows: Sequence[Row]) -> bool:
    try:
        [float(v) for _, values in rows for v in values[1:]]
    except ValueError:
        return False
    return True

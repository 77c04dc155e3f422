"""Submission CSVs: build one from predictions, validate it, write it (never over an existing file),
and read one back as probabilities (the local server scores with that).

Example:
    >>> import numpy as np
    >>> from kaggle_kit.competition import Submission
    >>> fmt = Submission(id_column="ID", label_column="Ground_Truth", labels="index")
    >>> df = build_frame(fmt, ("pistol", "smartphone"), ["img0.jpg"], np.array([[0.2, 0.8]]))
    >>> df.to_csv(index=False).splitlines()
    ['ID,Ground_Truth', 'img0.jpg,1']
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import SubmissionError

__all__ = ["build_frame", "expected_ids", "read_ids", "validate_frame", "unused_path", "write_submission",
           "read_as_proba"]


def build_frame(fmt: Submission, classes: tuple[str, ...], ids: Sequence[str], proba: np.ndarray):
    import pandas as pd

    proba = np.asarray(proba, dtype=np.float64)
    if fmt.labels == "proba":
        data = {fmt.id_column: list(ids)}
        for col, values in zip(fmt.columns(classes)[1:], proba.T):
            data[col] = values
        return pd.DataFrame(data)
    pred = proba.argmax(axis=1)
    labels = pred if fmt.labels == "index" else [classes[i] for i in pred]
    return pd.DataFrame({fmt.id_column: list(ids), fmt.label_column: labels})


def expected_ids(competition: Competition, data_root: Path, test_ids: Sequence[str]) -> list[str]:
    """Submission ids in the order to write them: the sample submission's order when there is one."""
    sample = competition.sample_path(data_root)
    ids = [competition.submission.id_of(i) for i in test_ids]
    if sample is None or not sample.is_file():
        return ids
    sample_ids = read_ids(sample, competition.submission.id_column)
    missing = sorted(set(sample_ids) - set(ids))
    if missing:
        raise SubmissionError(f"{sample}: {len(missing)} id(s) have no test image: {', '.join(missing[:5])}")
    return sample_ids


def read_ids(path: Path, id_column: str) -> list[str]:
    with Path(path).open(newline="") as fh:
        reader = csv.DictReader(fh)
        if id_column not in (reader.fieldnames or []):
            raise SubmissionError(f"{path}: no {id_column!r} column (columns: {', '.join(reader.fieldnames or [])})")
        return [row[id_column] for row in reader]


def validate_frame(competition: Competition, df, ids: Sequence[str], where: str = "submission") -> None:
    """Raise :class:`SubmissionError` unless ``df`` is a valid submission for exactly ``ids``."""
    fmt, classes = competition.submission, competition.classes
    want = fmt.columns(classes)
    if list(df.columns) != want:
        raise SubmissionError(f"{where}: columns are {list(df.columns)}, expected {want}")
    got = df[fmt.id_column].astype(str)
    dup = got[got.duplicated()].tolist()
    if dup:
        raise SubmissionError(f"{where}: {len(dup)} id(s) appear more than once: {', '.join(dup[:5])}")
    missing = sorted(set(ids) - set(got))
    extra = sorted(set(got) - set(ids))
    if missing:
        raise SubmissionError(f"{where}: {len(missing)} test id(s) missing: {', '.join(missing[:5])}")
    if extra:
        raise SubmissionError(f"{where}: {len(extra)} unknown id(s): {', '.join(extra[:5])}")
    if fmt.labels == "proba":
        p = df[want[1:]].to_numpy(dtype=np.float64)
        if not np.isfinite(p).all():
            raise SubmissionError(f"{where}: probabilities must be finite numbers")
        if (p < 0).any() or (p > 1).any():
            raise SubmissionError(f"{where}: probabilities must lie in [0, 1]")
        if competition.scorer.needs_proba and not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
            raise SubmissionError(f"{where}: each row's probabilities must sum to 1 for {competition.metric}")
    else:
        valid = {str(i) for i in range(len(classes))} if fmt.labels == "index" else set(classes)
        bad = sorted(set(df[fmt.label_column].astype(str)) - valid)
        if bad:
            raise SubmissionError(f"{where}: invalid label(s) {', '.join(bad[:5])}; valid: {', '.join(sorted(valid))}")


def unused_path(path: Path) -> Path:
    """``path`` if it does not exist yet, else ``name-2.csv``, ``name-3.csv``, ..."""
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def write_submission(competition: Competition, df, ids: Sequence[str], path: Path) -> Path:
    """Validate ``df`` and write it to ``path`` (or the next free name: nothing is overwritten)."""
    validate_frame(competition, df, ids, where=str(path))
    target = unused_path(Path(path))
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6f" if competition.submission.labels == "proba" else None)
    atomic_write_text(target, buf.getvalue())
    return target


def read_as_proba(competition: Competition, path: Path):
    """Read a submission CSV as (ids, probabilities in class order); labels become one-hot rows.

    Raises :class:`SubmissionError` with a one-line reason when the file is malformed.
    """
    import pandas as pd

    fmt, classes = competition.submission, competition.classes
    try:
        df = pd.read_csv(path, dtype={fmt.id_column: str}, keep_default_na=False)
    except Exception as e:  # pandas raises many types for a malformed file
        raise SubmissionError(f"{path}: not a readable CSV ({e})") from None
    want = fmt.columns(classes)
    if list(df.columns) != want:
        raise SubmissionError(f"{path}: columns are {list(df.columns)}, expected {want}")
    ids = df[fmt.id_column].astype(str).tolist()
    if fmt.labels == "proba":
        try:
            proba = df[want[1:]].to_numpy(dtype=np.float64)
        except ValueError:
            raise SubmissionError(f"{path}: probability columns must be numbers") from None
        return ids, proba
    lookup = {str(i): i for i in range(len(classes))} if fmt.labels == "index" else {c: i for i, c in enumerate(classes)}
    raw = df[fmt.label_column].astype(str).tolist()
    bad = sorted({r for r in raw if r not in lookup})
    if bad:
        raise SubmissionError(f"{path}: invalid label(s) {', '.join(bad[:5])}")
    proba = np.zeros((len(raw), len(classes)))
    proba[np.arange(len(raw)), [lookup[r] for r in raw]] = 1.0
    return ids, proba

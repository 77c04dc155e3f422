"""Submission CSVs: building each format, validating, never overwriting, and reading back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import SubmissionError
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.prediction.submission import build_frame, expected_ids, read_as_proba, validate_frame, write_submission

CLASSES = ("cat", "dog", "fox")
IDS = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
PROBA = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])


def competition(labels: str = "name", metric: str = "accuracy", **fmt) -> Competition:
    return Competition(slug="pets", classes=CLASSES, metric=metric, train=ClassFolders(),
                       submission=Submission(id_column="id", label_column="label", labels=labels, **fmt))


# -- build_frame -----------------------------------------------------------------------------
def test_build_frame_name() -> None:
    df = build_frame(competition().submission, CLASSES, IDS, PROBA)
    assert list(df.columns) == ["id", "label"]
    assert df.values.tolist() == [["a.jpg", "cat"], ["b.jpg", "dog"], ["c.jpg", "fox"], ["d.jpg", "cat"]]


def test_build_frame_index() -> None:
    df = build_frame(competition("index").submission, CLASSES, IDS, PROBA)
    assert df["label"].tolist() == [0, 1, 2, 0]


def test_build_frame_proba_with_and_without_column_names() -> None:
    df = build_frame(competition("proba").submission, CLASSES, IDS, PROBA)
    assert list(df.columns) == ["id", *CLASSES]
    assert np.array_equal(df[list(CLASSES)].to_numpy(), PROBA)
    named = competition("proba", proba_columns=("c_cat", "c_dog", "c_fox"))
    df = build_frame(named.submission, CLASSES, IDS, PROBA)
    assert list(df.columns) == ["id", "c_cat", "c_dog", "c_fox"]
    assert df["c_fox"].tolist() == PROBA[:, 2].tolist()


# -- validation: each failure is one line naming the file, and nothing is written -----------------
def rejected(comp: Competition, df: pd.DataFrame, tmp_path: Path) -> str:
    path = tmp_path / "sub.csv"
    with pytest.raises(SubmissionError) as e:
        write_submission(comp, df, IDS, path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    assert not path.exists()
    return msg


def name_frame(ids=IDS, labels=("cat", "dog", "fox", "cat")) -> pd.DataFrame:
    return pd.DataFrame({"id": list(ids), "label": list(labels)})


def test_missing_ids(tmp_path: Path) -> None:
    msg = rejected(competition(), name_frame(IDS[:2], ["cat", "dog"]), tmp_path)
    assert "2 test id(s) missing: c.jpg, d.jpg" in msg


def test_extra_ids(tmp_path: Path) -> None:
    msg = rejected(competition(), name_frame([*IDS, "zz.jpg"], ["cat", "dog", "fox", "cat", "dog"]), tmp_path)
    assert "1 unknown id(s): zz.jpg" in msg


def test_duplicate_ids(tmp_path: Path) -> None:
    msg = rejected(competition(), name_frame([*IDS, "b.jpg"], ["cat", "dog", "fox", "cat", "dog"]), tmp_path)
    assert "appear more than once: b.jpg" in msg


def test_wrong_columns(tmp_path: Path) -> None:
    df = name_frame().rename(columns={"label": "class"})
    msg = rejected(competition(), df, tmp_path)
    assert "columns are ['id', 'class'], expected ['id', 'label']" in msg


def test_invalid_label_names_and_indices(tmp_path: Path) -> None:
    msg = rejected(competition(), name_frame(labels=["cat", "wolf", "fox", "Cat"]), tmp_path)
    assert "invalid label(s) Cat, wolf" in msg
    msg = rejected(competition("index"), name_frame(labels=[0, 1, 3, 2]), tmp_path)
    assert "invalid label(s) 3" in msg


def proba_frame(p: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"id": IDS, **{c: p[:, i] for i, c in enumerate(CLASSES)}})


@pytest.mark.parametrize("value, reason", [
    (np.nan, "probabilities must be finite numbers"),
    (np.inf, "probabilities must be finite numbers"),
    (1.5, "probabilities must lie in [0, 1]"),
    (-0.2, "probabilities must lie in [0, 1]"),
])
def test_bad_probabilities(tmp_path: Path, value: float, reason: str) -> None:
    p = PROBA.copy()
    p[2, 1] = value
    assert rejected(competition("proba", "log_loss"), proba_frame(p), tmp_path).endswith(reason)


def test_rows_must_sum_to_one_only_for_a_metric_that_scores_probabilities(tmp_path: Path) -> None:
    p = PROBA.copy()
    p[0] = [0.5, 0.5, 0.5]
    msg = rejected(competition("proba", "log_loss"), proba_frame(p), tmp_path)
    assert msg.endswith("each row's probabilities must sum to 1 for log_loss")
    validate_frame(competition("proba", "accuracy"), proba_frame(p), IDS)  # scores need not sum to 1


def test_valid_frames_pass() -> None:
    validate_frame(competition(), name_frame(), IDS)
    validate_frame(competition("index"), name_frame(labels=[0, 1, 2, 0]), IDS)
    validate_frame(competition("proba", "log_loss"), proba_frame(PROBA), IDS)


# -- writing ---------------------------------------------------------------------------------
def test_existing_submission_is_never_overwritten(tmp_path: Path) -> None:
    comp = competition()
    path = tmp_path / "subs" / "pets.csv"
    first = write_submission(comp, name_frame(), IDS, path)
    assert first == path
    original = path.read_text()
    assert original.splitlines() == ["id,label", "a.jpg,cat", "b.jpg,dog", "c.jpg,fox", "d.jpg,cat"]
    second = write_submission(comp, name_frame(labels=["dog"] * 4), IDS, path)
    third = write_submission(comp, name_frame(labels=["fox"] * 4), IDS, path)
    assert (second.name, third.name) == ("pets-2.csv", "pets-3.csv")
    assert path.read_text() == original
    assert second.read_text().splitlines()[1] == "a.jpg,dog"
    assert third.read_text().splitlines()[1] == "a.jpg,fox"


# -- reading back ----------------------------------------------------------------------------
@pytest.mark.parametrize("labels", ["name", "index"])
def test_read_as_proba_round_trip_for_labels(tmp_path: Path, labels: str) -> None:
    comp = competition(labels)
    path = write_submission(comp, build_frame(comp.submission, CLASSES, IDS, PROBA), IDS, tmp_path / "s.csv")
    ids, proba = read_as_proba(comp, path)
    assert ids == IDS
    assert np.array_equal(proba, np.eye(3)[PROBA.argmax(axis=1)])


def test_read_as_proba_round_trip_for_probabilities(tmp_path: Path) -> None:
    comp = competition("proba", "log_loss")
    ids = ["007", "10", "2", "3"]  # ids that look like numbers stay strings, leading zeros kept
    path = write_submission(comp, build_frame(comp.submission, CLASSES, ids, PROBA), ids, tmp_path / "s.csv")
    got_ids, proba = read_as_proba(comp, path)
    assert got_ids == ids
    assert np.allclose(proba, PROBA, atol=1e-6)


def test_read_as_proba_rejects_malformed_files(tmp_path: Path) -> None:
    comp = competition()
    bad_cols = tmp_path / "cols.csv"
    bad_cols.write_text("id,class\na.jpg,cat\n")
    with pytest.raises(SubmissionError, match="columns are"):
        read_as_proba(comp, bad_cols)
    bad_label = tmp_path / "label.csv"
    bad_label.write_text("id,label\na.jpg,cat\nb.jpg,wolf\n")
    with pytest.raises(SubmissionError, match="invalid label"):
        read_as_proba(comp, bad_label)
    text = tmp_path / "text.csv"
    text.write_text("id,cat,dog,fox\na.jpg,0.1,high,0.2\n")
    with pytest.raises(SubmissionError) as e:
        read_as_proba(competition("proba"), text)
    assert str(e.value) == f"{text}: probability columns must be numbers"


# -- expected ids ----------------------------------------------------------------------------
def test_expected_ids_follow_the_sample_submission(tmp_path: Path) -> None:
    comp = competition(ids="stem", sample="sample.csv")
    test_ids = ["1.jpg", "2.jpg", "10.jpg"]
    assert expected_ids(comp, tmp_path, test_ids) == ["1", "2", "10"]          # no sample file: image order
    (tmp_path / "sample.csv").write_text("id,label\n10,cat\n1,cat\n2,cat\n")
    assert expected_ids(comp, tmp_path, test_ids) == ["10", "1", "2"]
    (tmp_path / "sample.csv").write_text("id,label\n10,cat\n1,cat\n2,cat\n99,cat\n")
    with pytest.raises(SubmissionError) as e:
        expected_ids(comp, tmp_path, test_ids)
    assert str(e.value) == f"{tmp_path / 'sample.csv'}: 1 id(s) have no test image: 99"

"""The local server scores on its own: its own CSV parser and metrics, driven by each competition's
``competition.json``, and no import of ``kaggle_kit`` (so that it can catch the kit's mistakes)."""
from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kaggle_helpers import SLUG, TRUTH, add_competition, csv_text, tiny_members
from kaggle_local import LocalKaggleServer, ServerError, SubmissionRejected
from kaggle_local.scoring import Scorer

PACKAGE = Path(__file__).resolve().parents[1] / "kaggle_local"
LOSS_AT_ZERO = -math.log(1e-15)        # a true class given probability 0 is clipped to 1e-15


def kit_imports(source: str) -> list[str]:
    """The ``kaggle_kit`` modules a Python source imports (absolute imports, at any depth)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return [name for name in found if name == "kaggle_kit" or name.startswith("kaggle_kit.")]


def test_kaggle_local_imports_no_kaggle_kit_module():
    assert kit_imports("import os\nfrom kaggle_kit.errors import KitError\ndef f():\n    import kaggle_kit\n") == [
        "kaggle_kit.errors", "kaggle_kit"]
    files = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "demo.py" in files and len(files) >= 10
    assert {str(f.relative_to(PACKAGE)): kit_imports(f.read_text()) for f in files} == {
        str(f.relative_to(PACKAGE)): [] for f in files}


def test_importing_every_server_module_loads_no_kaggle_kit_module():
    modules = sorted(f"kaggle_local.{f.stem}" for f in PACKAGE.glob("*.py") if f.stem != "__init__")
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kaggle_kit'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- the parser ---------------------------------------------------------------------------------------
def scorer_for(tmp_path: Path, solution: str, facts: dict | None = None, slug: str = "pets") -> Scorer:
    path = tmp_path / "solution.csv"
    path.write_text(solution)
    return Scorer.load(slug, path, facts)


def submit(tmp_path: Path, scorer: Scorer, text: str | bytes, name: str = "sub.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return scorer.score(path)


def test_rows_in_any_order_with_padding_crlf_bom_and_blank_lines_score_as_kaggle_does(tmp_path):
    scorer = scorer_for(tmp_path, csv_text(TRUTH), {"classes": ["cat", "dog"]})
    clean = submit(tmp_path, scorer, csv_text(TRUTH), "clean.csv")
    assert clean.overall == 1.0
    rows = [f"  {i} , {label}  " for i, label in reversed(TRUTH.items())]
    messy = "\ufeff id , label \r\n" + "\r\n".join(rows) + "\r\n\r\n  \r\n"
    assert submit(tmp_path, scorer, messy.encode("utf-8"), "messy.csv") == clean


@pytest.mark.parametrize("body, message", [
    ("id,label\n1,cat\n2,dog\n", "sub.csv: 4 id(s) missing, e.g. 3, 4, 5, 6"),
    (csv_text(TRUTH) + "2,cat\n 3 ,cat\n", "sub.csv: 2 id(s) appear more than once, e.g. 2, 3"),
    (csv_text({**TRUTH, "77": "cat", "9": "dog"}), "sub.csv: 2 unknown id(s), e.g. 77, 9"),
    (csv_text({**TRUTH, "4": "Cat"}), "sub.csv: invalid label(s) Cat"),
    ("id,label,extra\n1,cat,x\n", "sub.csv: columns are ['id', 'label', 'extra'], expected ['id', 'label']"),
    ("id,label\n1,cat\n2\n", "sub.csv: line 3 has 1 value(s), expected 2"),
    ("\n \n", "sub.csv: the file is empty"),
    (b"id,label\n1,\xff\n", "sub.csv: not a readable CSV (not UTF-8 text)"),
])
def test_malformed_submissions_are_refused_with_one_line(tmp_path, body, message):
    scorer = scorer_for(tmp_path, csv_text(TRUTH))
    with pytest.raises(SubmissionRejected) as refused:
        submit(tmp_path, scorer, body)
    assert str(refused.value) == message


PROBA_FACTS = {"metric": "log_loss", "id_column": "image", "labels": "proba", "classes": ["a", "b", "c"]}
PROBA_SOLUTION = "image,a,b,c\nx,1,0,0\ny,0,1,0\nz,0,0,1\n"


def test_log_loss_rescales_rows_that_do_not_sum_to_one_then_clips_at_1e_15(tmp_path):
    scorer = scorer_for(tmp_path, PROBA_SOLUTION, PROBA_FACTS)
    scores = submit(tmp_path, scorer, "image,a,b,c\nz,1,1,2\nx,2,1,1\ny,0,3,0\n")
    assert scores.overall == pytest.approx(-(math.log(0.5) + math.log(1 - 1e-15) + math.log(0.5)) / 3)
    zero = submit(tmp_path, scorer, "image,a,b,c\nx,0,1,1\ny,0,1,0\nz,0,0,1\n")       # x: true class at 0
    assert zero.overall == pytest.approx((LOSS_AT_ZERO - 2 * math.log(1 - 1e-15)) / 3)


@pytest.mark.parametrize("row, reason", [
    ("x,0.5,abc,0.5", "probability columns must be numbers (line 2: 'abc')"),
    ("x,nan,0.5,0.5", "probabilities must be finite numbers (line 2: 'nan')"),
    ("x,-0.1,0.6,0.5", "probabilities must not be negative (line 2: '-0.1')"),
    ("x,0,0,0", "line 2: every probability is 0, nothing to rescale"),
])
def test_probabilities_that_cannot_be_scored_are_refused(tmp_path, row, reason):
    scorer = scorer_for(tmp_path, PROBA_SOLUTION, PROBA_FACTS)
    with pytest.raises(SubmissionRejected) as refused:
        submit(tmp_path, scorer, f"image,a,b,c\n{row}\ny,0,1,0\nz,0,0,1\n")
    assert str(refused.value) == f"sub.csv: {reason}"


def test_index_labels_and_f1_macro_from_the_facts(tmp_path):
    from sklearn.metrics import f1_score

    truth = [0, 1, 1, 0, 1, 1]
    pred = [0, 1, 0, 0, 0, 1]
    facts = {"metric": "f1_macro", "id_column": "ID", "labels": "index", "label_column": "Ground_Truth",
             "classes": ["pistol", "smartphone"]}
    scorer = scorer_for(tmp_path, "ID,Ground_Truth\n" + "".join(f"{n}.jpg,{t}\n" for n, t in enumerate(truth)), facts)
    scores = submit(tmp_path, scorer, "ID,Ground_Truth\n" + "".join(f"{n}.jpg,{p}\n" for n, p in enumerate(pred)))
    assert scores.overall == pytest.approx(f1_score(truth, pred, average="macro"))
    assert scorer.metric.direction == "max"
    with pytest.raises(SubmissionRejected, match=r"^sub.csv: invalid label\(s\) 2, pistol$"):
        submit(tmp_path, scorer, "ID,Ground_Truth\n0.jpg,2\n1.jpg,pistol\n")


def test_usage_values_are_read_through_the_same_parser(tmp_path):
    scorer = scorer_for(tmp_path, "id,label,Usage\n1,cat, Public \n2,dog,private\n3,dog,Public\n4,cat,Ignored\n")
    assert (scorer.public.tolist(), scorer.private.tolist()) == ([True, False, True, False], [False, True, False, False])


@pytest.mark.parametrize("facts, solution, message", [
    ({"metric": "auc"}, csv_text(TRUTH), "facts.json: unknown metric 'auc'; known: accuracy, log_loss, f1_macro"),
    ({"labels": "index"}, csv_text(TRUTH), "facts.json: labels 'index' needs 'classes'"),
    ({"labels": "probabilities"}, csv_text(TRUTH), "facts.json: 'labels' must be one of name, index, proba"),
    ({"classes": ["cat"]}, csv_text(TRUTH), "facts.json: 'classes' must be a list of at least two different names"),
    ({"label_column": "species"}, csv_text(TRUTH), "solution.csv: columns are ['id', 'label'], expected ['id', 'species']"),
    ({"classes": ["cat", "bird"]}, csv_text(TRUTH), "solution.csv: invalid label(s) dog"),
    ({}, "id,a,b\n1,x,y\n", "solution.csv: columns after 'id' must be numeric class probabilities"),
])
def test_facts_that_do_not_fit_the_solution_are_refused_naming_the_file(tmp_path, facts, solution, message):
    path = tmp_path / "solution.csv"
    path.write_text(solution)
    with pytest.raises(ServerError) as refused:
        Scorer.load("pets", path, facts, where="facts.json")
    assert message in str(refused.value) and "\n" not in str(refused.value)


# -- competition.json, in the folder or given from elsewhere ----------------------------------------------
def test_competition_json_from_elsewhere_sets_metric_and_format(tmp_path):
    root = tmp_path / "served"                  # a folder the server must not write into, like ../shared
    add_competition(root, SLUG, tiny_members(), solution=csv_text({i: str("cd".index(v[0])) for i, v in TRUTH.items()}))
    add_competition(root, "no-answers", tiny_members())
    facts = tmp_path / "tiny.json"
    facts.write_text(json.dumps({"title": "Tiny pets", "metric": "f1_macro", "labels": "index",
                                 "classes": ["cat", "dog"]}))
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"metric": "log_loss"}))
    with LocalKaggleServer(root=root, competition_json={SLUG: facts, "no-answers": answers}) as srv:
        comp = srv.ledger.competition(SLUG)
        assert (comp.title, comp.metric, comp.scorer.format.labels, comp.direction) == (
            "Tiny pets", "f1_macro", "index", "max")
        assert srv.ledger.competition("no-answers").metric == "log_loss"      # shown though nothing is scored
        body = csv_text({i: str("cd".index(v[0])) for i, v in TRUTH.items()}).encode()
        up = srv.ledger.start_upload(SLUG, "localuser", "s.csv", len(body))
        srv.ledger.receive_upload(up.token, body)
        record = srv.ledger.create_submission(SLUG, "localuser", up.token, "")
        assert (record.error, record.public, record.private) == ("", 1.0, 1.0)
    assert sorted(p.name for p in (root / SLUG).iterdir()) == ["solution.csv", f"{SLUG}.zip"]


def test_competition_json_mistakes_stop_the_server_at_start(tmp_path):
    root = tmp_path / "served"
    add_competition(root, SLUG, tiny_members(), solution=csv_text(TRUTH), settings={"metrc": "accuracy"})
    with pytest.raises(ServerError, match=r"competition.json: unknown key\(s\) metrc; known: title, "):
        LocalKaggleServer(root=root)
    with pytest.raises(ServerError, match=r"nope.json: not found \(given as the competition.json of tiny-pets\)"):
        LocalKaggleServer(root=root, competition_json={SLUG: tmp_path / "nope.json"})
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"metric": "accuracy"}))
    with pytest.raises(ServerError, match="served: no competition other-slug to apply .*good.json to"):
        LocalKaggleServer(root=root, competition_json={SLUG: good, "other-slug": good})
    add_competition(root, "no-answers", tiny_members(), settings={"metric": "auc"})     # checked without a solution
    with pytest.raises(ServerError, match="no-answers/competition.json: unknown metric 'auc'"):
        LocalKaggleServer(root=root, competition_json={SLUG: good})


def test_bundled_demo_competition_states_its_facts():
    with LocalKaggleServer() as srv:
        comp = srv.ledger.competition("cifar-10-mini")
        assert (comp.metric, comp.scorer.format.labels, len(comp.scorer.format.classes)) == ("accuracy", "name", 10)
        assert len(comp.scorer.ids) == 200 and np.all(comp.scorer.public ^ comp.scorer.private)

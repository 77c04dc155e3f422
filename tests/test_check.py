"""`kaggle-kit new` on archives laid out like real ones (the blood-cell archive: a sample submission beside
``dataset2-master/images/TRAIN/<CLASS>/`` and ``.../TEST/<CLASS>/``), and `kaggle-kit check` on generated
and hand-written plugins. Tiny images written here; `new`, `check`, `train` and `predict` run as a user
runs them, in a subprocess."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaggle_kit import layouts  # layouts.TestTree: pytest would collect a Test* class imported by name
from kaggle_kit.cli import main
from kaggle_kit.competition import Submission
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.project import load_plugin
from tests.toy_project import kit

CELLS = ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
COLOURS = {"EOSINOPHIL": (200, 40, 40), "LYMPHOCYTE": (40, 200, 40), "MONOCYTE": (40, 40, 200),
           "NEUTROPHIL": (200, 200, 40)}


def cell(path: Path, cls: str, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.clip(np.array(COLOURS[cls][::-1]) + rng.normal(0, 20, (24, 32, 3)), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), img)


def blood_archive(root: Path, *, wrapper: str = "", upper: bool = True, sample_in: str = "",
                  per_class: int = 6) -> list[str]:
    """``root/[wrapper/]{sample_in/}sample_submission.csv`` and ``root/[wrapper/]dataset2-master/images/
    {TRAIN,TEST}/<CLASS>/_<n>_<id>.jpeg``; returns the test ids (file names, unique over the classes)."""
    rng = np.random.default_rng(0)
    top = root / wrapper if wrapper else root
    images = top / "dataset2-master" / "images"
    train, test = ("TRAIN", "TEST") if upper else ("train", "test")
    ids = []
    for k, cls in enumerate(CELLS):
        for n in range(per_class):
            cell(images / train / cls / f"_{n}_{k}{n}.jpeg", cls, rng)
        for n in range(2):
            ids.append(f"_{n}_9{k}{n}.jpeg")
            cell(images / test / cls / ids[-1], cls, rng)
    sample = top / sample_in / "sample_submission.csv"
    sample.parent.mkdir(parents=True, exist_ok=True)
    with sample.open("w", newline="") as fh:
        csv.writer(fh).writerows([["Image", *CELLS], *[[i, 0.25, 0.25, 0.25, 0.25] for i in ids]])
    return ids


def project(root: Path) -> Path:
    (root / "competitions").mkdir(parents=True)
    return root


VARIANTS = {   # name: (blood_archive options, folder of TRAIN/TEST below data/blood, sample path)
    "as shipped": ({}, "dataset2-master/images", "sample_submission.csv"),
    "wrapper folder": ({"wrapper": "blood-cells"}, "blood-cells/dataset2-master/images",
                       "blood-cells/sample_submission.csv"),
    "lower case": ({"upper": False}, "dataset2-master/images", "sample_submission.csv"),
    "sample deeper": ({"sample_in": "dataset2-master/csv"}, "dataset2-master/images",
                      "dataset2-master/csv/sample_submission.csv"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_new_finds_everything_in_a_real_archive_layout(tmp_path: Path, variant: str) -> None:
    options, images, sample = VARIANTS[variant]
    root = project(tmp_path)
    blood_archive(root / "data" / "blood", **options)
    train, test = ("TRAIN", "TEST") if options.get("upper", True) else ("train", "test")

    done = kit(root, "new", "blood")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "works: loaded it and listed 24 training images (EOSINOPHIL 6, LYMPHOCYTE 6, MONOCYTE 6, " \
           "NEUTROPHIL 6) and 8 test images" in done.stdout
    assert "ln -s" not in done.stdout
    comp = load_plugin(root / "competitions" / "blood.py")
    assert comp.train == ClassFolders(folder=f"{images}/{train}")
    assert comp.test == layouts.TestTree(folder=f"{images}/{test}")
    assert comp.classes == CELLS
    assert comp.metric == "log_loss"                  # learnt from the sample's four probability columns
    assert comp.submission == Submission(id_column="Image", labels="proba", ids="name", sample=sample)
    assert set(comp.recipes) == {"fast", "best"}

    checked = kit(root, "check", "blood")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("ok: blood: 24 training images in 4 classes (EOSINOPHIL 6, LYMPHOCYTE 6, "
                                     "MONOCYTE 6, NEUTROPHIL 6); 8 test images cover the 8 ids of "
                                     f"data/blood/{sample}")
    assert "warning" not in checked.stdout


def test_data_inside_the_data_folder_searches_all_of_it(tmp_path: Path) -> None:
    """Pointed at the inner folder, `new` still finds the sample beside it, and the paths start at data/blood."""
    root = project(tmp_path)
    blood_archive(root / "data" / "blood")
    done = kit(root, "new", "blood", "--data", "data/blood/dataset2-master/images")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote competitions/blood.py from data/blood\n" in done.stdout
    table = " ".join(done.stdout.split())               # the table wraps its last column
    assert "--data dataset2-master/images/ is inside data/blood/, which training reads: searched all of it" in table
    assert "ln -s" not in done.stdout and "note:" not in done.stdout
    comp = load_plugin(root / "competitions" / "blood.py")
    assert comp.train == ClassFolders(folder="dataset2-master/images/TRAIN")
    assert comp.submission.sample == "sample_submission.csv" and comp.metric == "log_loss"


def test_data_elsewhere_never_links_into_an_existing_data_folder(tmp_path: Path) -> None:
    root = project(tmp_path)
    blood_archive(root / "downloads" / "blood")
    (root / "data" / "blood").mkdir(parents=True)        # exists: `ln -s x data/blood` would land inside it
    done = kit(root, "new", "blood", "--data", "downloads/blood")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ln -s" not in done.stdout
    assert ("note: training reads data/blood, which already exists and is not downloads/blood: the plugin's "
            "paths are relative to downloads/blood; move its files into data/blood") in done.stdout

    (root / "data" / "blood").rmdir()                    # absent: a link is the quick fix, and lands right
    done = kit(root, "new", "blood", "--data", "downloads/blood", "--force")
    assert f"ln -s {root / 'downloads' / 'blood'} data/blood`" in done.stdout


def test_generated_plugin_trains_with_the_fast_recipe_and_predicts(tmp_path: Path) -> None:
    root = project(tmp_path)
    ids = blood_archive(root / "data" / "blood")
    assert kit(root, "new", "blood").returncode == 0
    assert load_plugin(root / "competitions" / "blood.py").recipes == {"fast": {"budget": "5m"}, "best": {"budget": "1h"}}
    # the recipe's budget, shortened for the test; the options given are kept and the rest is planned
    done = kit(root, "train", "blood", "--recipe", "fast", "--budget", "90s", "--size", "32", "--folds", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plan for 90s" in done.stdout and "CV log_loss" in done.stdout
    done = kit(root, "predict", "blood")
    assert done.returncode == 0, done.stdout + done.stderr
    [csv_path] = (root / "submissions" / "blood").glob("*.csv")
    with csv_path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Image", *CELLS]
    assert [r[0] for r in rows[1:]] == ids               # the sample's ids, in its order


HAND_WRITTEN = '''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder, TestTree

COMPETITION = Competition(
    slug="blood", classes={classes}, metric={metric!r},
    train=ClassFolders(folder="dataset2-master/images/TRAIN"),
    test={test}(folder="dataset2-master/images/TEST"),
    submission=Submission(id_column="Image", labels="proba", ids="name", sample="sample_submission.csv"),
    recipes={recipes},
)
'''


def hand_written(root: Path, classes: tuple[str, ...] = CELLS, metric: str = "log_loss",
                 recipes: str = '{"fast": {"head_epochs": 5}, "best": {"finetune_epochs": 2}}',
                 test: str = "TestTree") -> None:
    (root / "competitions" / "blood.py").write_text(HAND_WRITTEN.format(classes=classes, metric=metric,
                                                                        recipes=recipes, test=test))


def check(root: Path, monkeypatch, capsys) -> tuple[int, list[str]]:
    monkeypatch.setenv("KAGGLE_KIT_HOME", str(root))
    monkeypatch.delenv("KAGGLE_KIT_COMPETITIONS", raising=False)
    monkeypatch.chdir(root)
    rc = main(["check", "blood"])
    captured = capsys.readouterr()
    return rc, (captured.out + captured.err).splitlines()


def test_check_passes_a_good_hand_written_plugin(tmp_path: Path, monkeypatch, capsys) -> None:
    root = project(tmp_path)
    blood_archive(root / "data" / "blood")
    hand_written(root)
    rc, lines = check(root, monkeypatch, capsys)
    assert rc == 0
    assert lines == ["ok: blood: 24 training images in 4 classes (EOSINOPHIL 6, LYMPHOCYTE 6, MONOCYTE 6, "
                     "NEUTROPHIL 6); 8 test images cover the 8 ids of data/blood/sample_submission.csv; columns "
                     "Image, EOSINOPHIL, LYMPHOCYTE, MONOCYTE, NEUTROPHIL; metric log_loss fits the submission's "
                     "probability columns; recipes default, fast, best"]


def test_check_reports_each_fault_of_a_hand_written_plugin_in_one_line(tmp_path: Path, monkeypatch,
                                                                       capsys) -> None:
    root = project(tmp_path)
    ids = blood_archive(root / "data" / "blood")
    sample = root / "data" / "blood" / "sample_submission.csv"
    with sample.open("a", newline="") as fh:             # an id no test image answers
        csv.writer(fh).writerow(["_9_999.jpeg", 0.25, 0.25, 0.25, 0.25])
    # a wrong class list (BASOPHIL has no images, NEUTROPHIL's images have no class), a metric that
    # scores labels for a sample of probabilities, and no recipes
    hand_written(root, classes=("BASOPHIL", "EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE"), metric="accuracy",
                 recipes="{}")

    rc, lines = check(root, monkeypatch, capsys)

    assert rc == 1
    plugin, train = "competitions/blood.py", "data/blood/dataset2-master/images/TRAIN/<class>/<image>"
    assert lines == [
        f"error: {train}: 6 image(s) labelled 'NEUTROPHIL', which is not one of the classes in {plugin} "
        f"(BASOPHIL, EOSINOPHIL, LYMPHOCYTE, MONOCYTE)",
        f"error: {plugin}: class 'BASOPHIL' has no training images in {train}",
        "error: data/blood/sample_submission.csv: columns are Image, EOSINOPHIL, LYMPHOCYTE, MONOCYTE, NEUTROPHIL; "
        f"{plugin} writes Image, BASOPHIL, EOSINOPHIL, LYMPHOCYTE, MONOCYTE (no NEUTROPHIL)",
        f"error: {plugin}: metric 'accuracy' does not fit data/blood/sample_submission.csv, which has 4 "
        "probability columns: expected log_loss",
        "error: data/blood/sample_submission.csv: 1 of its 9 id(s) name no test image in "
        "data/blood/dataset2-master/images/TEST/**/<image> (ids='name'): _9_999.jpeg",
        f"warning: {plugin}: no 'fast' recipe, so `kaggle-kit train blood --recipe fast` fails "
        "(`kaggle-kit new` writes both)",
        f"warning: {plugin}: no 'best' recipe, so `kaggle-kit train blood --recipe best` fails "
        "(`kaggle-kit new` writes both)",
        f"5 problem(s) in blood ({plugin} against data/blood)",
    ]
    assert len(ids) == 8


def test_check_reports_a_label_metric_for_a_label_sample_and_a_bad_recipe(tmp_path: Path, monkeypatch,
                                                                          capsys) -> None:
    root = project(tmp_path)
    blood_archive(root / "data" / "blood")
    (root / "data" / "blood" / "sample_submission.csv").write_text("Image,Label\n_0_900.jpeg,EOSINOPHIL\n")
    hand_written(root, recipes='{"fast": {"head_epoch": 5}, "best": {}}')
    rc, lines = check(root, monkeypatch, capsys)
    assert rc == 1
    problems = [line for line in lines if line.startswith("error: ")]
    assert ("error: competitions/blood.py: metric 'log_loss' does not fit data/blood/sample_submission.csv, "
            "which has one label column (Label): expected a label metric such as accuracy or f1_macro") in problems
    assert any(line.startswith("error: competitions/blood.py: recipe 'fast': unknown training option(s): "
                               "head_epoch;") for line in problems)


def test_check_without_data_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    root = project(tmp_path)
    hand_written(root)
    rc, lines = check(root, monkeypatch, capsys)
    assert rc == 1
    assert lines[0] == ("error: data/blood: data folder not found (`kaggle-kit fetch blood`, or unzip the "
                        "competition's files there)")


def test_check_says_a_flat_test_layout_misses_images_in_sub_folders(tmp_path: Path, monkeypatch, capsys) -> None:
    root = project(tmp_path)
    blood_archive(root / "data" / "blood")
    hand_written(root, test="TestFolder")
    rc, lines = check(root, monkeypatch, capsys)
    assert rc == 1
    assert lines[0] == ("error: data/blood/dataset2-master/images/TEST: no test images (expected layout: "
                        "dataset2-master/images/TEST/<image>); its 8 images are in sub-folders: "
                        "test=TestTree(folder='dataset2-master/images/TEST') reads them")
    assert lines[-1] == "1 problem(s) in blood (competitions/blood.py against data/blood)"


def test_check_counts_raw_labels_a_label_map_joins(tmp_path: Path, monkeypatch, capsys) -> None:
    root = project(tmp_path)
    blood_archive(root / "data" / "blood")
    plugin = root / "competitions" / "blood.py"
    hand_written(root, classes=("GRANULOCYTE", "LYMPHOCYTE", "MONOCYTE"))
    plugin.write_text(plugin.read_text().replace(
        "    recipes=", '    label_map={"EOSINOPHIL": "GRANULOCYTE", "NEUTROPHIL": "GRANULOCYTE"},\n    recipes='))
    monkeypatch.setenv("KAGGLE_KIT_HOME", str(root))
    monkeypatch.chdir(root)
    from kaggle_kit.tools.scaffold import check_plugin
    report = check_plugin(load_plugin(plugin), root / "data" / "blood")
    assert report.class_counts == {"GRANULOCYTE": 12, "LYMPHOCYTE": 6, "MONOCYTE": 6}
    assert not any("labelled" in p or "no training images" in p for p in report.problems)

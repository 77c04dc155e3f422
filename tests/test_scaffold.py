"""`kaggle-kit new`: one tiny competition folder per supported layout, written here with cv2."""
from __future__ import annotations

import ast
import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaggle_kit import layouts  # layouts.TestFolder: pytest would collect a TestFolder imported by name
from kaggle_kit.cli import main
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import KitError
from kaggle_kit.layouts import ClassFolders, ClassInFilename, LabelsCSV, NoTest
from kaggle_kit.project import Project, load_plugin
from kaggle_kit.tools.scaffold import ScaffoldResult, infer_spec, render_plugin, scaffold


def image(path: Path, side: int = 80, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((side, side, 3), value, np.uint8))


def table(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])


def new(tmp_path: Path, slug: str, data: Path, **kw) -> tuple[ScaffoldResult, Competition]:
    result = scaffold(slug, data, tmp_path / "competitions", **kw)
    assert result.path == tmp_path / "competitions" / f"{slug.replace('-', '_')}.py"
    assert result.validation.ok, result.validation.error
    return result, load_plugin(result.path)


def labelled(comp: Competition, data: Path) -> dict[str, str]:
    """Every training image's id -> its class name, through the plugin's own layout."""
    items = comp.train.items(data)
    return {i.id: comp.classes[comp.class_index(i.label, i.id)] for i in items}


def pistolas_like(root: Path) -> Path:
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        image(root / "train" / "pistol" / name)
    for name in ("x.jpg", "y.png"):
        image(root / "train" / "smartphone" / name)
    for name in ("img0.jpg", "img1.jpg", "img2.PNG"):
        image(root / "test" / name)
    table(root / "sample_submission.csv", ["ID", "Ground_Truth"], [["img0.jpg", 0], ["img1.jpg", 0], ["img2.PNG", 0]])
    return root


def test_class_folders_with_index_labels(tmp_path: Path) -> None:
    data = pistolas_like(tmp_path / "data" / "guns")
    result, comp = new(tmp_path, "guns", data)

    assert comp.train == ClassFolders(folder="train")
    assert comp.test == layouts.TestFolder(folder="test")
    assert comp.classes == ("pistol", "smartphone")
    assert comp.metric == "accuracy"
    assert comp.submission == Submission(id_column="ID", label_column="Ground_Truth", labels="index", ids="name",
                                         sample="sample_submission.csv")
    assert comp.defaults == {"image_size": 224}
    assert labelled(comp, data) == {"pistol/a.jpg": "pistol", "pistol/b.jpg": "pistol", "pistol/c.jpg": "pistol",
                                    "smartphone/x.jpg": "smartphone", "smartphone/y.png": "smartphone"}
    assert (result.validation.train_images, result.validation.test_images) == (5, 3)
    assert result.spec.class_counts == {"pistol": 3, "smartphone": 2}
    # which index is which class cannot be read from the folder: said in the file, next to `classes`
    assert [f.field for f in result.spec.to_check] == ["submission.labels", "symmetries", "title"]
    text = result.path.read_text()
    assert "# TO CHECK: sample_submission.csv gives 'Ground_Truth' as a class index" in text
    assert "pistol=0, smartphone=1" in text
    assert "# inferred from train/: 2 class folders" in text


def test_generated_file_looks_like_a_plugin(tmp_path: Path) -> None:
    spec = infer_spec("guns", pistolas_like(tmp_path / "guns"))
    tree = ast.parse(render_plugin(spec))
    assert ast.get_docstring(tree).startswith("Guns: train/<class>/<image>, test test/<image>; accuracy.")
    imports = [(n.module, [a.name for a in n.names]) for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert imports == [("kaggle_kit.competition", ["Competition", "Submission"]),
                       ("kaggle_kit.layouts", ["ClassFolders", "TestFolder"])]
    assigned = [n.targets[0].id for n in tree.body if isinstance(n, ast.Assign)]
    assert assigned == ["COMPETITION"]


def test_labels_csv_with_names_and_ids_without_extension(tmp_path: Path) -> None:
    data = tmp_path / "cifar"
    labels = ["cat", "dog", "frog", "cat", "dog", "frog", "cat", "dog"]
    for n in range(1, 9):
        image(data / "train" / f"{n}.png", side=32, value=n)
    for n in range(1, 5):                      # numbered like the train images: the sample tells them apart
        image(data / "test" / f"{n}.png", side=32)
    table(data / "trainLabels.csv", ["id", "label"], [[n, lab] for n, lab in enumerate(labels, start=1)])
    table(data / "sampleSubmission.csv", ["id", "label"], [[n, "cat"] for n in range(1, 5)])

    result, comp = new(tmp_path, "cifar-mini", data)

    assert comp.train == LabelsCSV(folder="train", csv="trainLabels.csv", id_column="id", label_column="label")
    assert comp.test == layouts.TestFolder(folder="test")
    assert comp.classes == ("cat", "dog", "frog")
    assert comp.metric == "accuracy"
    assert comp.submission == Submission(id_column="id", label_column="label", labels="name", ids="stem",
                                         sample="sampleSubmission.csv")
    assert comp.defaults == {"image_size": 96}            # 32 px images
    assert labelled(comp, data) == {f"{n}.png": lab for n, lab in enumerate(labels, start=1)}
    assert [f.field for f in result.spec.to_check] == ["symmetries", "title"]
    source = result.path.read_text()
    assert comp.symmetries == "hflip" and '    symmetries="hflip",' in source      # stated, to confirm:
    assert "# TO CHECK: hflip: a mirrored image keeps its class" in source and '"d8": every flip' in source


def test_class_in_file_name_without_test_split(tmp_path: Path) -> None:
    data = tmp_path / "seeds"
    names = {"cat_1.png": "cat", "cat_2.png": "cat", "dog (1).png": "dog", "dog (2).png": "dog", "dog-3.png": "dog"}
    for name in names:
        image(data / "train" / name)

    result, comp = new(tmp_path, "seeds", data)

    assert isinstance(comp.train, ClassInFilename) and comp.train.folder == "train"
    assert comp.test == NoTest()
    assert comp.classes == ("cat", "dog")
    assert comp.metric == "accuracy"
    assert comp.submission == Submission()                 # nothing to learn it from: kit defaults, flagged
    assert labelled(comp, data) == names
    assert {f.field for f in result.spec.to_check} == {"submission", "metric", "symmetries", "title"}
    assert result.validation.test_images == 0


def test_probability_columns_mean_log_loss(tmp_path: Path) -> None:
    data = tmp_path / "cervix"
    for cls in ("Type_1", "Type_2", "Type_3"):
        for n in range(2):
            image(data / "train" / cls / f"{n}.jpg")
    for n in range(3):
        image(data / "test" / f"{n}.jpg")
    table(data / "sample_submission.csv", ["image_name", "Type_1", "Type_2", "Type_3"],
          [[f"{n}.jpg", 0.3, 0.3, 0.4] for n in range(3)])

    result, comp = new(tmp_path, "cervix", data)

    assert comp.metric == "log_loss"
    assert comp.classes == ("Type_1", "Type_2", "Type_3")
    assert comp.submission == Submission(id_column="image_name", labels="proba", ids="name",
                                         sample="sample_submission.csv")
    assert comp.submission.columns(comp.classes) == ["image_name", "Type_1", "Type_2", "Type_3"]
    assert "label_column" not in result.path.read_text()    # meaningless for probabilities
    assert set(labelled(comp, data).values()) == {"Type_1", "Type_2", "Type_3"}


def test_probability_columns_named_otherwise_are_matched_by_name(tmp_path: Path) -> None:
    data = tmp_path / "pets"
    for cls in ("cat", "dog"):
        for n in range(2):
            image(data / "train" / cls / f"{n}.jpg")
    image(data / "test" / "t.jpg")
    table(data / "sample_submission.csv", ["file", "is_dog", "is_cat"], [["t.jpg", 0.5, 0.5]])

    _, comp = new(tmp_path, "pets", data)

    assert comp.submission.proba_columns == ("is_cat", "is_dog")   # column of class 0, of class 1
    assert comp.submission.columns(comp.classes) == ["file", "is_cat", "is_dog"]


def test_single_wrapping_folder(tmp_path: Path) -> None:
    data = tmp_path / "data" / "wrapped"
    for cls in ("ant", "bee"):
        for n in range(2):
            image(data / "archive-top" / "train" / cls / f"{cls}{n}.jpg")
    image(data / "archive-top" / "test" / "q.jpg")
    table(data / "archive-top" / "sample_submission.csv", ["id", "label"], [["q", "ant"]])

    result, comp = new(tmp_path, "wrapped", data)

    assert comp.train == ClassFolders(folder="archive-top/train")
    assert comp.test == layouts.TestFolder(folder="archive-top/test")
    assert comp.submission == Submission(id_column="id", label_column="label", labels="name", ids="stem",
                                         sample="archive-top/sample_submission.csv")
    assert labelled(comp, data) == {"ant/ant0.jpg": "ant", "ant/ant1.jpg": "ant",
                                    "bee/bee0.jpg": "bee", "bee/bee1.jpg": "bee"}
    assert any("wrapping folder archive-top/" in f.reason for f in result.spec.findings)


def test_imbalanced_classes_keep_accuracy_but_say_f1(tmp_path: Path) -> None:
    data = tmp_path / "rare"
    for n in range(12):
        image(data / "train" / "common" / f"{n}.jpg")
    image(data / "train" / "rare" / "0.jpg")
    image(data / "test" / "t.jpg")
    table(data / "sample_submission.csv", ["id", "label"], [["t.jpg", "common"]])

    result, comp = new(tmp_path, "rare", data)

    assert comp.metric == "accuracy"
    assert "metric" in {f.field for f in result.spec.to_check}
    assert "f1_macro" in result.path.read_text()


def test_plugin_is_found_by_the_project(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KAGGLE_KIT_COMPETITIONS", raising=False)
    new(tmp_path, "guns", pistolas_like(tmp_path / "data" / "guns"))
    comp = Project(tmp_path).competition("guns")
    assert comp.classes == ("pistol", "smartphone")


def test_sample_ids_without_test_image_fail_validation(tmp_path: Path) -> None:
    data = pistolas_like(tmp_path / "guns")
    table(data / "sample_submission.csv", ["ID", "Ground_Truth"],
          [["img0.jpg", 0], ["img1.jpg", 0], ["img2.PNG", 0], ["gone.jpg", 0]])
    result = scaffold("guns", data, tmp_path / "competitions")
    assert result.path.is_file()                           # written, so the user can fix it
    assert not result.validation.ok
    assert "gone.jpg" in result.validation.error
    assert "submission.ids" in {f.field for f in result.spec.to_check}


@pytest.mark.parametrize("make, expected", [
    (lambda d: None, "no image files"),
    (lambda d: table(d / "train.csv", ["id", "label"], [["a", "b"]]), "no image files"),
    (lambda d: [image(d / "test" / f"img{n}.jpg") for n in range(3)], "no labelled training images found"),
])
def test_bad_folders_fail_in_one_line_naming_the_folder(tmp_path: Path, make, expected: str) -> None:
    data = tmp_path / "bad"
    data.mkdir()
    make(data)
    with pytest.raises(KitError) as err:
        scaffold("bad", data, tmp_path / "competitions")
    message = str(err.value)
    assert message.startswith(f"{data}: ") and expected in message and "\n" not in message
    assert "train/<class>/<image>" in message               # says what was expected
    assert not (tmp_path / "competitions").exists()


def test_missing_folder_and_bad_slug(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="folder not found"):
        scaffold("nothing", tmp_path / "nothing", tmp_path / "competitions")
    with pytest.raises(KitError, match="lowercase letters, digits and dashes"):
        scaffold("Bad Slug", pistolas_like(tmp_path / "guns"), tmp_path / "competitions")


def test_existing_plugin_is_not_overwritten_without_force(tmp_path: Path) -> None:
    data = pistolas_like(tmp_path / "guns")
    target = tmp_path / "competitions" / "guns.py"
    target.parent.mkdir()
    target.write_text("# mine\n")
    with pytest.raises(KitError, match="already exists; pass --force"):
        scaffold("guns", data, tmp_path / "competitions")
    assert target.read_text() == "# mine\n"
    new(tmp_path, "guns", data, force=True)
    assert "COMPETITION = Competition(" in target.read_text()


def test_slug_of_a_plugin_elsewhere_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bundled").mkdir()
    (tmp_path / "bundled" / "guns.py").write_text("# another plugin for the same slug\n")
    with pytest.raises(KitError, match="already has a plugin there"):
        scaffold("guns", pistolas_like(tmp_path / "guns"), tmp_path / "competitions",
                 other_plugin_folders=[tmp_path / "bundled"])


def test_cli_new(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAGGLE_KIT_HOME", str(tmp_path))
    monkeypatch.delenv("KAGGLE_KIT_COMPETITIONS", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "competitions").mkdir()
    pistolas_like(tmp_path / "data" / "guns")

    assert main(["new", "guns"]) == 0                      # --data defaults to data/<slug>
    out = capsys.readouterr().out
    assert "wrote competitions/guns.py from data/guns" in out
    assert "submission.labels" in out and "guess(es) to confirm" in out
    assert "works: loaded it and listed 5 training images (pistol 3, smartphone 2) and 3 test images" in out
    assert "kaggle-kit check guns" in out and "kaggle-kit train guns --recipe fast" in out

    assert main(["new", "guns"]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err

    elsewhere = pistolas_like(tmp_path / "downloads" / "guns2")
    assert main(["new", "guns2", "--data", str(elsewhere)]) == 0
    assert "training reads data/guns2" in capsys.readouterr().out


def test_cli_reports_a_plugin_that_does_not_work(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAGGLE_KIT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    data = pistolas_like(tmp_path / "data" / "guns")
    table(data / "sample_submission.csv", ["ID", "Ground_Truth"], [["img0.jpg", 0], ["img1.jpg", 0], ["x.jpg", 0]])
    assert main(["new", "guns"]) == 1
    err = capsys.readouterr().err
    assert "was written but does not work yet" in err and "x.jpg" in err

"""Each dataset layout on a tiny folder written here, and the errors for a wrong or missing one."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kaggle_kit import layouts  # layouts.TestFolder: pytest would collect a TestFolder imported by name
from kaggle_kit.errors import DataError
from kaggle_kit.layouts import LAYOUTS, ClassFolders, ClassInFilename, LabelsCSV, NoTest


def touch_images(folder: Path, *names: str) -> None:
    """Files with image names; layouts list files and never decode them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"not decoded by layouts")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])


def one_line_error(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# -- class folders ---------------------------------------------------------------------------
def test_class_folders_labels_by_sub_folder_in_natural_order(tmp_path: Path) -> None:
    touch_images(tmp_path / "train" / "cat", "10.jpg", "2.jpg", "notes.txt")
    touch_images(tmp_path / "train" / "dog", "1.PNG")
    items = ClassFolders().items(tmp_path)
    assert [(it.id, it.label) for it in items] == [("cat/2.jpg", "cat"), ("cat/10.jpg", "cat"), ("dog/1.PNG", "dog")]
    assert items[0].path == tmp_path / "train" / "cat" / "2.jpg"


def test_class_folders_missing_folder_names_path_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        ClassFolders(folder="training").items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "training") in msg
    assert "training/<class>/<image>" in msg


def test_class_folders_without_images_names_path_and_layout(tmp_path: Path) -> None:
    touch_images(tmp_path / "train", "loose.jpg")          # images, but not in class sub-folders
    (tmp_path / "train" / "cat").mkdir()                    # an empty class folder
    with pytest.raises(DataError) as e:
        ClassFolders().items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "train") in msg and "no images" in msg
    assert "train/<class>/<image>" in msg


# -- labels CSV ------------------------------------------------------------------------------
def test_labels_csv_ids_with_extension(tmp_path: Path) -> None:
    touch_images(tmp_path / "images", "a.jpg", "b.png")
    write_csv(tmp_path / "labels.csv", ["file", "kind"], [["a.jpg", " cat "], ["b.png", "dog"]])
    items = LabelsCSV(folder="images", csv="labels.csv", id_column="file", label_column="kind").items(tmp_path)
    assert [(it.id, it.label, it.path.name) for it in items] == [("a.jpg", "cat", "a.jpg"), ("b.png", "dog", "b.png")]


def test_labels_csv_ids_without_extension(tmp_path: Path) -> None:
    touch_images(tmp_path / "train", "17.png", "3.png")
    write_csv(tmp_path / "trainLabels.csv", ["id", "label"], [["17", "frog"], ["3", "ship"]])
    items = LabelsCSV(csv="trainLabels.csv").items(tmp_path)
    assert [(it.id, it.label) for it in items] == [("17.png", "frog"), ("3.png", "ship")]
    assert items[0].path == tmp_path / "train" / "17.png"


def test_labels_csv_missing_files_listed_first_few_in_one_line(tmp_path: Path) -> None:
    touch_images(tmp_path / "train", "0.png")
    missing = [str(i) for i in range(1, 8)]  # 7 ids with no image
    write_csv(tmp_path / "train.csv", ["id", "label"], [["0", "cat"], *[[i, "dog"] for i in missing]])
    with pytest.raises(DataError) as e:
        LabelsCSV().items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "train.csv") in msg
    assert "7 id(s)" in msg
    assert "1, 2, 3, 4, 5, ..." in msg
    assert "6" not in msg.split("1, 2, 3, 4, 5")[1]


def test_labels_csv_missing_columns_named(tmp_path: Path) -> None:
    touch_images(tmp_path / "train", "0.png")
    write_csv(tmp_path / "train.csv", ["image", "label"], [["0", "cat"]])
    with pytest.raises(DataError) as e:
        LabelsCSV().items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "train.csv") in msg
    assert "missing column(s) id" in msg and "columns are image, label" in msg


def test_labels_csv_missing_csv_and_folder(tmp_path: Path) -> None:
    layout = LabelsCSV()
    with pytest.raises(DataError) as e:
        layout.items(tmp_path)
    assert str(tmp_path / "train") in one_line_error(e)
    assert layout.describe() in str(e.value)
    touch_images(tmp_path / "train", "0.png")
    with pytest.raises(DataError) as e:
        layout.items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "train.csv") in msg and "not found" in msg


def test_labels_csv_without_rows(tmp_path: Path) -> None:
    touch_images(tmp_path / "train", "0.png")
    write_csv(tmp_path / "train.csv", ["id", "label"], [])
    with pytest.raises(DataError, match="no rows"):
        LabelsCSV().items(tmp_path)


# -- class in file name ----------------------------------------------------------------------
@pytest.mark.parametrize("name, label", [
    ("anadenanthera_16.jpg", "anadenanthera"),
    ("senegalia (3).jpg", "senegalia"),
    ("parkia_pendula_7.png", "parkia_pendula"),
    ("cat.12.jpg", "cat"),
    ("dog-4.jpg", "dog"),
])
def test_class_in_filename_label_of(name: str, label: str) -> None:
    assert ClassInFilename().label_of(Path(name)) == label


def test_class_in_filename_items(tmp_path: Path) -> None:
    touch_images(tmp_path / "train", "anadenanthera_16.jpg", "senegalia (3).jpg", "anadenanthera_2.jpg")
    items = ClassInFilename().items(tmp_path)
    assert [(it.id, it.label) for it in items] == [
        ("anadenanthera_2.jpg", "anadenanthera"), ("anadenanthera_16.jpg", "anadenanthera"),
        ("senegalia (3).jpg", "senegalia")]


def test_class_in_filename_unmatched_names_are_an_error(tmp_path: Path) -> None:
    touch_images(tmp_path / "train", "cat_1.jpg", "nonumber.jpg")
    with pytest.raises(DataError) as e:
        ClassInFilename().items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "train") in msg and "nonumber.jpg" in msg and "cat_1.jpg" not in msg


def test_class_in_filename_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError) as e:
        ClassInFilename().items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "train") in msg and ClassInFilename().describe() in msg


# -- test splits -----------------------------------------------------------------------------
def test_test_folder_items_have_no_label(tmp_path: Path) -> None:
    touch_images(tmp_path / "test", "img10.jpg", "img9.jpg", "readme.md")
    items = layouts.TestFolder().items(tmp_path)
    assert [(it.id, it.label) for it in items] == [("img9.jpg", None), ("img10.jpg", None)]


def test_test_folder_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        layouts.TestFolder(folder="test_images").items(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "test_images") in msg and "test_images/<image>" in msg
    (tmp_path / "test_images").mkdir()
    with pytest.raises(DataError) as e:
        layouts.TestFolder(folder="test_images").items(tmp_path)
    msg = one_line_error(e)
    assert "no test images" in msg and str(tmp_path / "test_images") in msg


def test_no_test_has_no_items(tmp_path: Path) -> None:
    assert NoTest().items(tmp_path / "does-not-exist") == []


def test_registry_names_every_layout() -> None:
    assert {name: LAYOUTS.get(name) for name in LAYOUTS.names()} == {
        "class_folders": ClassFolders, "labels_csv": LabelsCSV, "class_in_filename": ClassInFilename,
        "test_folder": layouts.TestFolder, "test_tree": layouts.TestTree, "no_test": NoTest}

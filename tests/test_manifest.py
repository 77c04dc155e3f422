"""The data manifest: broken images left out with reasons, odd modes kept, label errors, the check cache."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from kaggle_kit import layouts
from kaggle_kit.data import manifest
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import DataError
from kaggle_kit.data.images import read_rgb
from kaggle_kit.layouts import ClassFolders, LabelsCSV
from kaggle_kit.data.manifest import build_manifest, stratified_sample

WriteImage = Callable[..., Path]  # the conftest fixture

PETS = Competition(slug="pets", classes=("cat", "dog"), metric="accuracy",
                   train=ClassFolders(), test=layouts.TestFolder(), submission=Submission())

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def odd_images(folder: Path) -> dict[str, tuple[tuple[int, int, int], str]]:
    """One image per odd mode; returns file name -> (expected RGB, mode)."""
    folder.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(folder / "grey.png"), np.full((6, 6), 90, np.uint8))
    Image.new("RGBA", (6, 6), (0, 0, 255, 255)).save(folder / "rgba.png")
    pal = Image.new("P", (6, 6))
    pal.putpalette([0, 255, 0] + [0] * 765)
    pal.save(folder / "palette.png")
    deep = np.zeros((6, 6, 3), np.uint16)
    deep[:, :, 2] = 0xFFFF                                   # red, in cv2's BGR order
    assert cv2.imwrite(str(folder / "deep.png"), deep)
    Image.new("CMYK", (6, 6), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=95)
    return {"grey.png": ((90, 90, 90), "L"), "rgba.png": (BLUE, "RGBA"), "palette.png": (GREEN, "P"),
            "deep.png": (RED, "RGB;16"), "cmyk.jpg": (RED, "CMYK")}


def broken_images(folder: Path, write_image: WriteImage) -> dict[str, str]:
    """A truncated JPEG, a 0-byte JPEG and a text file named .jpg; returns file name -> reason."""
    good = write_image(folder / "_whole.jpg", size=32).read_bytes()
    (folder / "_whole.jpg").unlink()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello, I am not a JPEG\n")
    return {"truncated.jpg": "truncated JPEG (no end-of-image marker)", "empty.jpg": "empty file (0 bytes)",
            "text.jpg": "not a decodable image"}


def test_broken_images_excluded_with_reasons_odd_modes_kept(tmp_path: Path, write_image: WriteImage) -> None:
    cat, dog = tmp_path / "train" / "cat", tmp_path / "train" / "dog"
    odd = odd_images(cat)
    write_image(dog / "1.png", RED)
    broken = broken_images(dog, write_image)

    m = build_manifest(PETS, tmp_path, "train", cache_dir=tmp_path / "cache")

    assert {Path(e.path).name: e.reason for e in m.excluded} == broken
    assert all(Path(e.path).parent == dog for e in m.excluded)
    assert sorted(m.ids) == sorted([f"cat/{n}" for n in odd] + ["dog/1.png"])
    for id_, path, label, info in zip(m.ids, m.paths, m.labels, m.infos):
        assert label == (0 if id_.startswith("cat/") else 1)
        assert path == tmp_path / "train" / id_
        if label == 0:
            colour, mode = odd[path.name]
            assert info.mode == mode, path.name
            img = read_rgb(path)
            assert img.dtype == np.uint8 and img.shape == (6, 6, 3)
            assert np.abs(img[3, 3].astype(int) - colour).max() <= 6, path.name


def test_class_with_no_readable_image_is_a_data_error(tmp_path: Path, write_image: WriteImage) -> None:
    write_image(tmp_path / "train" / "cat" / "1.png")
    (tmp_path / "train" / "dog").mkdir()
    broken_images(tmp_path / "train" / "dog", write_image)
    with pytest.raises(DataError) as e:
        build_manifest(PETS, tmp_path, "train", cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg
    assert "no readable image: dog" in msg


def labelled_folder(root: Path, write_image: WriteImage, labels: dict[str, str]) -> None:
    for name in labels:
        write_image(root / "train" / name)
    with (root / "train.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "label"], *labels.items()])


def test_unknown_label_is_a_data_error_naming_it(tmp_path: Path, write_image: WriteImage) -> None:
    labelled_folder(tmp_path, write_image, {"1.png": "cat", "2.png": "horse", "3.png": "dog"})
    comp = Competition(slug="pets", classes=("cat", "dog"), metric="accuracy", train=LabelsCSV(),
                       submission=Submission())
    with pytest.raises(DataError) as e:
        build_manifest(comp, tmp_path, "train", cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert "'horse'" in msg and "pets" in msg and "cat, dog" in msg and "\n" not in msg


def test_label_map_translates_raw_labels(tmp_path: Path, write_image: WriteImage) -> None:
    labelled_folder(tmp_path, write_image, {"1.png": "0", "2.png": "1", "3.png": "1"})
    comp = Competition(slug="pets", classes=("cat", "dog"), metric="accuracy", train=LabelsCSV(),
                       submission=Submission(), label_map={"0": "cat", "1": "dog"})
    m = build_manifest(comp, tmp_path, "train", cache_dir=tmp_path / "cache")
    assert dict(zip(m.ids, m.labels.tolist())) == {"1.png": 0, "2.png": 1, "3.png": 1}


def test_test_split_has_no_labels(tiny_project) -> None:
    comp = tiny_project.competition("tiny-pets")
    m = build_manifest(comp, tiny_project.data_root("tiny-pets"), "test", cache_dir=tiny_project.cache)
    assert m.labels is None and m.ids == ("t0.png", "t1.png") and m.split == "test"


def test_missing_data_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        build_manifest(PETS, tmp_path / "nowhere", "train", cache_dir=tmp_path / "cache")
    assert str(tmp_path / "nowhere") in str(e.value) and "kaggle-kit fetch pets" in str(e.value)


def test_second_build_does_not_decode_again(tmp_path: Path, write_image: WriteImage,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for label in ("cat", "dog"):
        for i in range(3):
            write_image(tmp_path / "train" / label / f"{i}.png", (i, 0, 0))
    (tmp_path / "train" / "dog" / "bad.jpg").write_bytes(b"")
    calls: list[Path] = []
    real = manifest.check_image

    def counting(path: Path):
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(manifest, "check_image", counting)
    first = build_manifest(PETS, tmp_path, "train", cache_dir=tmp_path / "cache")
    assert len(calls) == 7
    calls.clear()
    second = build_manifest(PETS, tmp_path, "train", cache_dir=tmp_path / "cache")
    assert calls == []
    assert (second.ids, second.infos, second.excluded, second.fingerprint) == \
        (first.ids, first.infos, first.excluded, first.fingerprint)

    # a changed file is checked again (and only that one); the fingerprint changes with it
    changed = tmp_path / "train" / "cat" / "1.png"
    write_image(changed, (9, 9, 9), size=10)
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = build_manifest(PETS, tmp_path, "train", cache_dir=tmp_path / "cache")
    assert calls == [changed]
    assert third.fingerprint != first.fingerprint
    assert third.infos[third.ids.index("cat/1.png")].width == 10


def test_limit_keeps_every_class_and_subset_follows_indices(tmp_path: Path, write_image: WriteImage) -> None:
    for label, n in (("cat", 12), ("dog", 4)):
        for i in range(n):
            write_image(tmp_path / "train" / label / f"{i}.png", size=4)
    m = build_manifest(PETS, tmp_path, "train", cache_dir=tmp_path / "cache", limit=8, seed=1)
    assert np.bincount(m.labels).tolist() == [6, 2]
    sub = m.subset([len(m) - 1, 0])
    assert sub.ids == (m.ids[-1], m.ids[0]) and sub.labels.tolist() == [m.labels[-1], m.labels[0]]
    assert sub.fingerprint != m.fingerprint


def test_stratified_sample_is_seeded_and_proportional() -> None:
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    a = stratified_sample(labels, 20, seed=3)
    assert np.bincount(labels[a]).tolist() == [12, 6, 2]
    assert np.array_equal(a, stratified_sample(labels, 20, seed=3))
    assert not np.array_equal(a, stratified_sample(labels, 20, seed=4))
    assert np.array_equal(stratified_sample(labels, 500, seed=0), np.arange(100))


def test_an_image_declaring_a_huge_size_is_listed_as_unreadable(tmp_path: Path, write_image: WriteImage,
                                                                 header_bomb) -> None:
    write_image(tmp_path / "train" / "cat" / "1.png")
    write_image(tmp_path / "train" / "dog" / "1.png")
    (tmp_path / "train" / "dog" / "bomb.png").write_bytes(header_bomb())

    m = build_manifest(PETS, tmp_path, "train", cache_dir=tmp_path / "cache")

    assert sorted(m.ids) == ["cat/1.png", "dog/1.png"]
    assert [(Path(e.path).name, e.reason.split(":")[0]) for e in m.excluded] == [("bomb.png", "image too large")]
    assert "40000 x 40000" in m.excluded[0].reason

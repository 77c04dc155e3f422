"""Backbone entries and their facts: preprocessing, sizes, feature width, pretrained weights, and what
the rest of the kit reads from them (never the name)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import KitError
from kaggle_kit.model.backbones import BACKBONES, get_backbone, list_backbones
from kaggle_kit.model.features import pretrained


def test_every_entry_states_its_facts() -> None:
    for b in BACKBONES.entries():
        assert b.preprocess in {"raw", "caffe", "tf", "lite", "unit"}, b.name
        assert b.min_size <= b.default_size, b.name
        assert b.feature_width and b.feature_width > 0, b.name
        assert (b.app is None) != (b.builder is None), f"{b.name}: a keras.applications name or a builder"
    lite, cnn = get_backbone("efficientnet_lite0"), get_backbone("simple_cnn")
    assert (lite.preprocess, lite.default_size, lite.feature_width, lite.pretrained) == ("lite", 224, 1280, True)
    assert (cnn.preprocess, cnn.default_size, cnn.min_size, cnn.pretrained) == ("unit", 64, 8, False)
    for name, size in (("efficientnet_lite1", 240), ("efficientnet_lite2", 260)):
        b = get_backbone(name)
        assert (b.preprocess, b.default_size, b.feature_width, b.pretrained) == ("lite", size, 1280, True)
        assert "ImageNet top-1" in b.description
    assert get_backbone("inception_v3").min_size == 75 and get_backbone("efficientnet_b3").default_size == 300


def test_list_backbones_filters_on_pretrained() -> None:
    everything = list_backbones()
    assert everything == sorted(everything) == BACKBONES.names()
    assert list_backbones(pretrained=False) == ["simple_cnn"]
    assert set(list_backbones(pretrained=True)) == set(everything) - {"simple_cnn"}


def test_pretrained_reads_the_entry_and_the_weights() -> None:
    assert pretrained(TrainConfig())                                        # efficientnet_lite0, imagenet
    assert not pretrained(TrainConfig(weights="none"))
    assert not pretrained(TrainConfig(backbone="simple_cnn"))               # imagenet is only the default
    assert pretrained(TrainConfig(backbone="resnet50", weights="/some/file.weights.h5"))


def test_weights_checks(tmp_path: Path) -> None:
    cnn, lite = get_backbone("simple_cnn"), get_backbone("efficientnet_lite0")
    for weights in ("none", "imagenet"):
        cnn.check_weights(weights)
    file = tmp_path / "w.weights.h5"
    file.write_bytes(b"")
    lite.check_weights(str(file))
    with pytest.raises(KitError, match="^simple_cnn has no pretrained weights; use --weights none$"):
        cnn.check_weights(str(file))
    with pytest.raises(KitError, match="weights file not found"):
        lite.check_weights(str(tmp_path / "missing.h5"))
    with pytest.raises(KitError, match="^backbone inception_v3 needs images of at least 75 px, got 64$"):
        get_backbone("inception_v3").check_size(64)


@pytest.mark.parametrize("name", ["simple_cnn", "efficientnet_lite0", "efficientnet_lite2", "mobilenet_v3_small"])
def test_feature_width_is_what_the_built_backbone_gives(name: str, tmp_path: Path) -> None:
    b = get_backbone(name)
    model = b.build(max(b.min_size, 32), "none", tmp_path)
    assert model.output.shape[-1] == b.feature_width


def test_listing_backbones_does_not_import_tensorflow() -> None:
    code = ("import sys, kaggle_kit.model.backbones as b; b.list_backbones(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""TrainConfig.validate(): every name against its registry and every value's range, one line each,
before a run starts; and the place a bad value came from when a plugin set it."""
from __future__ import annotations

from pathlib import Path

import pytest

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import ConfigError
from kaggle_kit.layouts import ClassFolders


def refused(**options) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        TrainConfig(**options).validate()
    assert "\n" not in str(e.value)
    return e.value


def test_the_defaults_and_every_registered_name_pass() -> None:
    from kaggle_kit.data.augment import list_augments
    from kaggle_kit.model.strategy import list_strategies

    cfg = TrainConfig()
    assert cfg.validate() is cfg
    for augment in list_augments():
        TrainConfig(augment=augment).validate()
    for strategy in list_strategies():
        TrainConfig(strategy=strategy).validate()
    TrainConfig(backbone="simple_cnn", weights="none", image_size=8, holdout=0.2, folds=1, limit=50,
                finetune_schedule="cosine", resize="pad", finetune_from="block6a_expand_conv").validate()


@pytest.mark.parametrize("option, value, message", [
    ("backbone", "resnet5", "unknown backbone 'resnet5'; did you mean resnet50? Known: convnext_tiny, "),
    ("augment", "ligth", "unknown augmentation preset 'ligth'; did you mean light? Known: cutmix, erasing, flip, "
                         "light, mixup, none, randaugment, seed, seed_chained, strong"),
    ("finetune_schedule", "cosin", "unknown learning-rate schedule 'cosin'; did you mean cosine? Known: "
                                   "cosine, plateau"),
    ("strategy", "gpus", "unknown strategy 'gpus'; did you mean gpu"),
    ("resize", "center", "unknown resize mode 'center'"),
])
def test_a_misspelt_name_names_the_closest(option: str, value: str, message: str) -> None:
    e = refused(**{option: value})
    assert str(e).startswith(message) and e.field == option


@pytest.mark.parametrize("options, field, message", [
    ({"image_size": 16}, "image_size", "backbone efficientnet_lite0 needs images of at least 32 px, got 16"),
    ({"image_size": "96"}, "image_size", "training option image_size must be a whole number, got '96'"),
    ({"folds": 1}, "folds", "training option folds must be at least 2 (or set holdout), got 1"),
    ({"holdout": 1.0}, "holdout", "training option holdout must be a fraction between 0 and 1, got 1.0"),
    ({"dropout": 1.0}, "dropout", "training option dropout must be a fraction in [0, 1), got 1.0"),
    ({"label_smoothing": -0.1}, "label_smoothing", "training option label_smoothing must be a fraction in [0, 1)"),
    ({"finetune_lr": 0}, "finetune_lr", "training option finetune_lr must be a positive number, got 0"),
    ({"head_epochs": -1}, "head_epochs", "training option head_epochs must not be negative, got -1"),
    ({"batch_size": 0}, "batch_size", "training option batch_size must be at least 1, got 0"),
    ({"limit": 1}, "limit", "training option limit must be a whole number of at least 2 images, got 1"),
    ({"tta": "yes"}, "tta", "training option tta must be true or false, got 'yes'"),
    ({"backbone": "simple_cnn", "weights": __file__}, "weights",
     "simple_cnn has no pretrained weights; use --weights none"),
])
def test_a_value_out_of_range(options: dict, field: str, message: str) -> None:
    e = refused(**options)
    assert str(e).startswith(message) and e.field == field


def test_a_missing_weights_file(tmp_path: Path) -> None:
    e = refused(weights=str(tmp_path / "gone.weights.h5"))
    assert str(e) == f"{tmp_path / 'gone.weights.h5'}: weights file not found" and e.field == "weights"


# -- Competition.config validates and says where a plugin's bad value came from ----------------------
def spec(**kw) -> Competition:
    comp = Competition(slug="pets", classes=("cat", "dog"), metric="accuracy", train=ClassFolders(),
                       submission=Submission(), **kw)
    object.__setattr__(comp, "source", "/p/competitions/pets.py")
    return comp


def test_competition_config_validates_and_names_the_plugin_layer() -> None:
    comp = spec(defaults={"augment": "ligth"}, recipes={"tiny": {"image_size": 8}})
    with pytest.raises(ConfigError) as e:
        comp.config()
    assert str(e.value).startswith("/p/competitions/pets.py (defaults): unknown augmentation preset 'ligth'")
    with pytest.raises(ConfigError) as e:
        comp.config("tiny", {"augment": "flip"})
    assert str(e.value) == ("/p/competitions/pets.py (recipe 'tiny'): backbone efficientnet_lite0 needs images "
                            "of at least 32 px, got 8")
    assert comp.config("tiny", {"augment": "flip", "backbone": "simple_cnn"}).image_size == 8


def test_competition_config_a_bad_override_is_the_callers_own() -> None:
    with pytest.raises(ConfigError) as e:
        spec().config(overrides={"backbone": "vgg61"})
    assert str(e.value).startswith("unknown backbone 'vgg61'; did you mean vgg16?")

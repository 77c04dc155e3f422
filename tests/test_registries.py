"""The small registries (augmentation presets, resize modes, schedules, strategies, layouts): their
list_*() helpers and facts, the CLI choices they feed, and that listing them loads no TensorFlow."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kaggle_kit.cli import build_parser
from kaggle_kit.data.augment import AUGMENTS, get_augment, list_augments, make_augment
from kaggle_kit.data.resize import get_resize_mode, list_resize_modes, resize
from kaggle_kit.layouts import LAYOUTS, list_layouts
from kaggle_kit.model.strategy import STRATEGIES, list_strategies
from kaggle_kit.registry import UnknownName
from kaggle_kit.training.schedules import get_schedule, list_schedules
from kaggle_kit.training.optim import BN_MODES, list_optimizers


def test_list_helpers() -> None:
    assert list_augments() == ["cutmix", "erasing", "flip", "light", "mixup", "none", "randaugment", "seed",
                               "seed_chained", "strong"]
    assert list_resize_modes() == ["crop", "pad", "stretch"]
    assert list_schedules() == ["cosine", "plateau"]
    assert list_strategies() == ["auto", "cpu", "gpu", "mirrored", "tpu"]
    assert list_layouts(labelled=True) == ["class_folders", "class_in_filename", "labels_csv"]
    assert list_layouts() == LAYOUTS.names()


def test_entries_carry_their_facts() -> None:
    assert all(get_augment(n).description for n in list_augments())
    assert all(get_augment(n).cost >= 0 and 0 <= get_augment(n).strength <= 4 for n in list_augments())
    assert [n for n in list_augments() if "features" in get_augment(n).paths] == ["mixup"]
    assert all(e.description for e in STRATEGIES.entries())
    assert [get_resize_mode(n).keeps_aspect for n in list_resize_modes()] == [True, True, False]
    assert get_schedule("plateau").adapts_on_plateau and not get_schedule("cosine").adapts_on_plateau
    assert all(LAYOUTS.get(n).labelled for n in list_layouts(labelled=True))


def test_augment_presets_build_and_a_typo_names_the_closest() -> None:
    assert make_augment("none", 0) is None
    assert [type(layer).__name__ for layer in make_augment("flip", 0).layers] == ["RandomAffine"]
    assert [type(layer).__name__ for layer in make_augment("seed_chained", 0).layers] == [
        "RandomFlip", "RandomRotation", "RandomTranslation", "RandomShear", "RandomZoom"]
    with pytest.raises(UnknownName, match="unknown augmentation preset 'strnog'; did you mean strong"):
        make_augment("strnog", 0)
    assert "strong" in AUGMENTS


def test_resize_modes_give_the_square() -> None:
    img = np.zeros((10, 30, 3), np.uint8)
    img[:, 10:20] = 255
    crop, pad = resize(img, 6, "crop"), resize(img, 6, "pad")
    assert crop.shape == pad.shape == (6, 6, 3)
    assert crop.min() == 255 and pad[0, 0, 0] == 128    # the centre cut; the grey border


TRAIN_OPTIONS = {"--augment": list_augments, "--resize": list_resize_modes, "--schedule": list_schedules,
                 "--strategy": list_strategies, "--optimizer": list_optimizers, "--bn": BN_MODES.names}


def _train_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["train"]


def test_cli_choices_are_the_registries() -> None:
    options = {flag: action for action in _train_parser()._actions for flag in action.option_strings}
    for flag, names in TRAIN_OPTIONS.items():
        assert list(options[flag].choices) == names(), flag
    from kaggle_kit.model.backbones import list_backbones
    # --backbone also takes a path (a Keras model file), so it has no choices: its help lists the names
    assert options["--backbone"].choices is None
    assert f"backbone: {', '.join(list_backbones())}; or a Keras model file" in options["--backbone"].help


def test_cli_refuses_a_misspelt_name_with_close_matches(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        _train_parser().parse_args(["--backbone", "resnet5"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith("argument --backbone: unknown backbone 'resnet5'; did you mean resnet50? Known: "
                        "convnext_tiny, efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, "
                        "efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, inception_v3, mobilenet_v3_large, mobilenet_v3_small, resnet50, "
                        "simple_cnn, vgg16, xception")


def test_listing_and_the_cli_help_import_no_tensorflow() -> None:
    code = ("import sys\n"
            "from kaggle_kit.data.augment import list_augments\n"
            "from kaggle_kit.data.resize import list_resize_modes\n"
            "from kaggle_kit.model.strategy import list_strategies\n"
            "from kaggle_kit.training.schedules import list_schedules\n"
            "from kaggle_kit.config import TrainConfig\n"
            "from kaggle_kit.cli import build_parser\n"
            "build_parser(); TrainConfig().validate()\n"
            "list_augments(), list_resize_modes(), list_strategies(), list_schedules()\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""`--backbone PATH`: a Keras model file (or a folder holding one) as the backbone, trained and predicted
end to end through the CLI on the toy project; and each bad path is a one-line error naming it."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import ConfigError
from kaggle_kit.model.backbones import get_backbone
from tests.toy_project import CLASSES, kit, make_project, run_json


def save_cnn(path: Path, input_size: int | None = None) -> Path:
    """A small headless CNN that scales raw 0-255 RGB itself and ends in a feature map."""
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 3))
    x = layers.Rescaling(1 / 255, name="scale")(inputs)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(x)
    x = layers.MaxPooling2D(name="pool_a")(x)
    x = layers.Conv2D(12, 3, padding="same", activation="relu", name="conv_b")(x)
    keras.Model(inputs, x, name="my_cnn").save(path)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("files"), per_class=10, test=6)


@pytest.fixture(scope="module")
def model_file(root: Path) -> Path:
    (root / "models").mkdir()
    return save_cnn(root / "models" / "my cnn.keras")


def test_a_keras_file_trains_and_predicts_through_the_cli(root: Path, model_file: Path) -> None:
    train = kit(root, "train", "toy", "--backbone", str(model_file), "--weights", "imagenet", "--folds", "2",
                "--size", "16", "--head-epochs", "3")
    assert train.returncode == 0, train.stdout + train.stderr
    run_id = re.search(r"^run (\S+) ->", train.stdout, re.M).group(1)
    assert "-my_cnn-" in run_id                                          # the file's stem, folder-safe
    assert "computing my_cnn features (cached for later runs)" in train.stdout
    rec = run_json(root / "checkpoints" / "toy" / run_id)
    assert rec["status"] == "complete" and rec["config"]["backbone"] == str(model_file)
    # the file's weights count as pretrained: phase 1 trains the head on its cached features
    assert {line.split(",")[1] for line in (root / "checkpoints" / "toy" / run_id / "history.csv")
            .read_text().splitlines()[1:]} == {"1"}

    predict = kit(root, "predict", "toy", "--run", run_id)
    assert predict.returncode == 0, predict.stdout + predict.stderr
    written = Path(re.search(r"wrote (\S+\.csv)", predict.stdout).group(1))
    lines = written.read_text().splitlines()
    assert lines[0] == "id,label" and len(lines) == 1 + 6
    assert {ln.split(",")[1] for ln in lines[1:]} <= set(CLASSES)


def test_the_backbone_keeps_the_files_layers_and_weights(root: Path, model_file: Path) -> None:
    import keras
    import numpy as np

    b = get_backbone(str(model_file))
    assert (b.preprocess, b.pretrained, b.short_name) == ("raw", True, "my_cnn")
    built = b.build(16, "imagenet", root / "cache")
    assert built.output_shape == (None, 12) and built.name == "backbone"
    assert {"scale", "conv_a", "conv_b"} <= {layer.name for layer in built.layers}
    original = keras.models.load_model(model_file)
    np.testing.assert_array_equal(built.get_layer("conv_b").get_weights()[0], original.get_layer("conv_b").get_weights()[0])
    fresh = b.build(16, "none", root / "cache")      # --weights none: the same layers, re-initialised
    assert not np.array_equal(fresh.get_layer("conv_b").get_weights()[0], original.get_layer("conv_b").get_weights()[0])


def test_a_folder_holding_one_model_file_is_that_file(root: Path, model_file: Path) -> None:
    assert get_backbone(str(model_file.parent)).fingerprint == get_backbone(str(model_file)).fingerprint
    TrainConfig(backbone=str(model_file.parent), image_size=16).validate()


def problem(backbone: str, **config) -> str:
    with pytest.raises(ConfigError) as err:
        TrainConfig(backbone=backbone, **config).validate()
    message = str(err.value)
    assert err.value.field == "backbone" and "\n" not in message, message
    return message


def test_bad_backbone_paths_name_the_file_and_what_is_missing(tmp_path: Path) -> None:
    assert problem(str(tmp_path / "absent.keras")) == f"{tmp_path / 'absent.keras'}: backbone file or folder not found"
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    assert problem(str(text)) == f"{text}: not a Keras model file: not a .keras (zip) archive"
    archive = tmp_path / "other.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
    assert problem(str(archive)) == f"{archive}: not a Keras model file: the archive has no config.json"
    weights = tmp_path / "cnn.weights.h5"
    weights.write_bytes(b"")
    assert "a weights file holds no model; pass it as --weights" in problem(str(weights))
    import h5py
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as f:
        f["x"] = [1, 2, 3]
    assert problem(str(bare)) == (f"{bare}: an HDF5 file without a model_config (weights only?); "
                                  f"pass it as --weights with a named --backbone")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert problem(str(empty)) == (f"{empty}: no Keras model here: no .keras or .h5 file and no keras-hub "
                                   f"preset (config.json)")


def test_a_keras_hub_preset_says_to_install_keras_hub(tmp_path: Path) -> None:
    import importlib.util

    assert importlib.util.find_spec("keras_hub") is None, "this test is for an install without keras-hub"
    preset = tmp_path / "efficientnet-b0" / "1"     # as /kaggle/input/<model>/keras/<variation>/<version>
    preset.mkdir(parents=True)
    (preset / "config.json").write_text(json.dumps({"module": "keras_hub.src.models.efficientnet.efficientnet_backbone",
                                                    "class_name": "EfficientNetBackbone", "config": {},
                                                    "registered_name": "keras_hub>EfficientNetBackbone"}))
    (preset / "model.weights.h5").write_bytes(b"")
    assert problem(str(preset)) == f"{preset}: a keras-hub preset; loading it needs keras-hub: pip install keras-hub"


def test_unknown_backbone_name_lists_the_known_ones() -> None:
    message = problem("resnet5")
    assert message.startswith("unknown backbone 'resnet5'; did you mean resnet50?")
    assert "efficientnet_lite1" in message and "efficientnet_lite2" in message


def test_a_fixed_input_size_must_match(tmp_path: Path, root: Path) -> None:
    from kaggle_kit.errors import KitError

    fixed = save_cnn(tmp_path / "fixed.keras", input_size=32)
    with pytest.raises(KitError, match=r"fixed.keras: takes 32x32 images only, not 16x16; train with --size 32$"):
        get_backbone(str(fixed)).build(16, "imagenet", root / "cache")
    assert get_backbone(str(fixed)).build(32, "imagenet", root / "cache").output_shape == (None, 12)


def test_the_cli_refuses_a_missing_file_in_one_line(root: Path) -> None:
    result = kit(root, "train", "toy", "--backbone", "models/missing.keras")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == ["error: models/missing.keras: backbone file or folder not found"], result.stderr


def test_the_cli_records_an_existing_path_absolute(root: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kaggle_kit.cli.core import _backbone_arg

    monkeypatch.chdir(root)
    assert _backbone_arg("models/my cnn.keras") == str(model_file.resolve())
    assert _backbone_arg("models/missing.keras") == "models/missing.keras"    # validate names it as given
    assert _backbone_arg("efficientnet_lite1") == "efficientnet_lite1"

"""Phase 2's optimizer (training/optim.py): layer-wise learning rates, AdamW's decay, the weights'
moving average and the tracker choosing it, BatchNorm frozen or trained, the new options' checks,
and the CLI flags reaching a run."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from toy_project import kit_here, make_project, run_dirs

from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import ConfigError
from kaggle_kit.metrics import get_metric
from kaggle_kit.model.backbones import get_backbone
from kaggle_kit.model.classifier import build_model, layer_stages, set_trainable, top_model
from kaggle_kit.training.callbacks import EvaluateMetric, SaveBest
from kaggle_kit.training.optim import has_ema, make_optimizer, stage_multipliers, swap_ema

pytestmark = pytest.mark.filterwarnings("ignore:.*shuffle=True.*:UserWarning")


def lite(tmp_path: Path, size: int = 32) -> keras.Model:
    return build_model(get_backbone("efficientnet_lite0"), n_classes=3, image_size=size, weights="none",
                       dropout=0.0, cache_dir=tmp_path)


def batch(n: int = 8, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    return x, keras.utils.to_categorical(rng.integers(0, 3, n), 3)


def one_step(model: keras.Model, optimizer, x, y) -> dict[str, float]:
    """Mean absolute change of each trained variable (by path) after one training step."""
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    before = {v.path: np.array(v) for v in model.trainable_variables}
    model.train_on_batch(x, y)
    return {v.path: float(np.mean(np.abs(np.array(v) - before[v.path]))) for v in model.trainable_variables}


def test_lite_stages_are_its_block_table_rows(tmp_path: Path) -> None:
    stages = layer_stages(lite(tmp_path))
    assert stages["stem_conv"] == stages["stem_bn"] == 0 and stages["block0_dwconv"] == 1
    # Lite0's repeats 1, 2, 2, 3, 3, 4, 1: blocks 1-2, 3-4, 5-7, 8-10, 11-14 and 15 are one stage each
    assert stages["block1_expand_conv"] == stages["block2_project_bn"] == 2
    assert stages["block8_expand_conv"] == stages["block10_project_bn"] == 5
    assert stages["block11_dwconv"] == stages["block14_dwconv"] == 6 and stages["block15_dwconv"] == 7
    assert stages["top_conv"] == stages["top_bn"] == 8


def test_stages_of_a_backbone_without_block_names_follow_its_widths(tmp_path: Path) -> None:
    model = build_model(get_backbone("simple_cnn"), n_classes=3, image_size=16, weights="none", dropout=0.0,
                        cache_dir=tmp_path)
    stages = layer_stages(model)
    assert sorted(set(stages.values())) == [0, 1, 2], "its 32-, 64- and 86-filter convolutions"
    first_bn = next(name for name in stages if name.startswith("batch_normalization"))   # Keras numbers the names
    assert stages[first_bn] == 0


def test_layer_decay_gives_lower_stages_smaller_adam_steps(tmp_path: Path) -> None:
    model = lite(tmp_path)
    set_trainable(model, 10_000, bn="train")     # batch statistics: gradients reach every layer of random weights
    factors = stage_multipliers(model, model.trainable_variables, 0.5)
    lr = 1e-3
    deltas = one_step(model, make_optimizer("adam", lr, multipliers=factors), *batch())
    by_path = {v.path: factors.get(id(v), 1.0) for v in model.trainable_variables}
    assert by_path["head/kernel"] == 1.0
    top, block15, block1 = (next(p for p in by_path if p.startswith(s)) for s in ("top_conv", "block15_", "block1_"))
    assert (by_path[top], by_path[block15]) == (0.5, 0.25) and by_path[block1] == pytest.approx(0.5 ** 7)
    # Adam's first step moves every element by about lr * factor, whatever the gradient's size
    for path in (top, block15, block1, "head/kernel"):
        assert deltas[path] == pytest.approx(lr * by_path[path], rel=0.05), path
    plain_model = lite(tmp_path / "b")
    set_trainable(plain_model, 10_000, bn="train")
    plain = one_step(plain_model, make_optimizer("adam", lr), *batch())
    for path in (top, block15, block1):
        assert plain[path] == pytest.approx(lr, rel=0.05), f"{path}: without layer decay, the full step"


def test_adamw_decays_kernels_not_biases_and_adam_does_not() -> None:
    kernel, bias = keras.Variable(np.ones((2, 2), "float32")), keras.Variable(np.ones(2, "float32"))
    for name, expected in (("adamw", 1 - 0.1 * 0.5), ("adam", 1.0)):
        kernel.assign(np.ones((2, 2))), bias.assign(np.ones(2))
        opt = make_optimizer(name, 0.1, weight_decay=0.5, multipliers={id(kernel): 1.0})
        opt.apply([np.zeros((2, 2), "float32"), np.zeros(2, "float32")], [kernel, bias])   # no gradient: decay only
        assert np.allclose(np.array(kernel), expected), name
        assert np.allclose(np.array(bias), 1.0)
    opt = make_optimizer("adamw", 0.1, weight_decay=0.5, multipliers={id(kernel): 0.2})
    kernel.assign(np.ones((2, 2)))
    opt.apply([np.zeros((2, 2), "float32")], [kernel])
    assert np.allclose(np.array(kernel), 1 - 0.1 * 0.2 * 0.5), "the decay follows the layer's rate"


class CheckChoice(keras.callbacks.Callback):
    """After the evaluator: scores the trained and the averaged weights itself and checks the logs
    report the better of the two."""

    def __init__(self, x, y_true, metric) -> None:
        super().__init__()
        self.x, self.y_true, self.metric, self.seen = x, y_true, metric, []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        raw = self.metric(self.y_true, self.model.predict(self.x, verbose=0))
        swap_ema(self.model.optimizer)
        averaged = self.metric(self.y_true, self.model.predict(self.x, verbose=0))
        swap_ema(self.model.optimizer)
        assert logs["val_score"] == pytest.approx(min(raw, averaged))
        assert logs["val_ema"] == float(averaged < raw)
        self.seen.append((raw, averaged))


def test_the_tracker_checkpoints_the_better_of_the_weights_and_their_average(tmp_path: Path) -> None:
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    labels = (x[:, 0] + x[:, 1] > 0).astype(int)
    y = keras.utils.to_categorical(labels, 2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=make_optimizer("adam", 0.05, ema=0.9), loss="categorical_crossentropy")
    metric = get_metric("log_loss")
    val = tf.data.Dataset.from_tensor_slices(x).batch(64)
    evaluator = EvaluateMetric(val, labels, metric, ema=True)
    saver = SaveBest(path=tmp_path / "best.keras", save=model.save, evaluator=evaluator, mode="min")
    checker = CheckChoice(x, labels, metric)
    model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[evaluator, checker, saver])
    assert has_ema(model.optimizer)
    assert all(raw != averaged for raw, averaged in checker.seen), "the average is other weights"
    best = keras.models.load_model(tmp_path / "best.keras", compile=False)
    assert np.allclose(best.predict(x, verbose=0), np.load(tmp_path / "oof.npy"), atol=1e-6), \
        "the checkpoint holds the weights whose predictions were kept"
    assert saver.state()["ema"] == saver.ema
    chosen = [averaged < raw for raw, averaged in checker.seen]
    assert saver.ema == chosen[saver.best_epoch]


@pytest.mark.parametrize("bn, moves", [("frozen", False), ("train", True)])
def test_bn_frozen_keeps_its_statistics_and_train_updates_them(tmp_path: Path, bn: str, moves: bool) -> None:
    model = lite(tmp_path)
    set_trainable(model, 40, bn=bn)
    layer = model.get_layer("backbone").get_layer("top_bn")
    before = np.array(layer.moving_mean)
    one_step(model, make_optimizer("adam", 1e-3), *batch())
    assert (not np.array_equal(np.array(layer.moving_mean), before)) is moves
    assert layer.trainable is moves

    upper = top_model(lite(tmp_path / "cut"), "block7_add", bn=bn)
    bns = [lyr for lyr in upper.get_layer(index=1).layers if isinstance(lyr, keras.layers.BatchNormalization)]
    assert bns and all(lyr.trainable is moves for lyr in bns)


@pytest.mark.parametrize("option, value, message", [
    ("optimizer", "adamm", "unknown optimizer 'adamm'; did you mean adam"),
    ("bn", "froze", "unknown BatchNorm mode 'froze'; did you mean frozen"),
    ("weight_decay", -0.1, "training option weight_decay must be a fraction in [0, 1)"),
    ("layer_decay", 0, "training option layer_decay must be in (0, 1]"),
    ("layer_decay", 1.5, "training option layer_decay must be in (0, 1]"),
    ("warmup", 1.0, "training option warmup must be a fraction of the phase in [0, 1)"),
    ("ema", "yes", "training option ema must be true or false"),
    ("ema_decay", 1.0, "training option ema_decay must be a momentum in (0, 1) or unset"),
    ("label_smoothing", 1.0, "training option label_smoothing must be a fraction in [0, 1)"),
])
def test_each_new_option_is_checked(option: str, value, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")) as e:
        TrainConfig(**{option: value}).validate()
    assert e.value.field == option and "\n" not in str(e.value)


def test_the_new_options_accept_their_ranges() -> None:
    TrainConfig(optimizer="adamw", weight_decay=0.0, layer_decay=1.0, warmup=0.0, ema=True, ema_decay=0.999,
                bn="train", label_smoothing=0.1).validate()


# -- through the CLI --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("optim"), per_class=12, test=3)


def losses(run_dir: Path) -> list[float]:
    with (run_dir / "history.csv").open(newline="") as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


def test_the_flags_reach_the_run_and_label_smoothing_the_loss(root: Path) -> None:
    common = ("train", "toy", "--holdout", "0.25", "--head-epochs", "6", "--seed", "1")
    plain = kit_here(root, *common)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    smoothed = kit_here(root, *common, "--label-smoothing", "0.5", "--optimizer", "adamw", "--weight-decay",
                        "0.01", "--layer-decay", "0.7", "--warmup", "0.2", "--ema", "--bn", "train")
    assert smoothed.returncode == 0, smoothed.stdout + smoothed.stderr
    first, second = sorted(run_dirs(root), key=lambda p: p.stat().st_mtime)
    config = json.loads((second / "run.json").read_text())["config"]
    assert {k: config[k] for k in ("label_smoothing", "optimizer", "weight_decay", "layer_decay", "warmup", "ema",
                                   "bn")} == {"label_smoothing": 0.5, "optimizer": "adamw", "weight_decay": 0.01,
                                              "layer_decay": 0.7, "warmup": 0.2, "ema": True, "bn": "train"}
    folds = json.loads((second / "run.json").read_text())["folds"]
    assert isinstance(folds[0]["ema"], bool)
    # cross-entropy against targets smoothed by 0.5 over 3 classes is at least their entropy
    q = np.array([0.5 + 0.5 / 3, 0.5 / 3, 0.5 / 3])
    floor = float(-(q * np.log(q)).sum())
    assert min(losses(second)) >= floor - 1e-3
    assert min(losses(first)) < floor, "unsmoothed, the same training goes below that floor"


def test_a_rebuilt_optimizer_averages_from_the_weights_it_resumes_with() -> None:
    """A resumed phase builds its optimizer and sets its step count past 0: the average must start
    at the weights, not at Keras' zeros."""
    kernel = keras.Variable(np.full((2, 2), 3.0, "float32"))
    opt = make_optimizer("adam", 0.1, ema=0.5)
    opt.build([kernel])
    opt.iterations.assign(40)
    opt.apply([np.zeros((2, 2), "float32")], [kernel])
    swap_ema(opt)
    assert np.allclose(np.array(kernel), 3.0)

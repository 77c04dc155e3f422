"""The classifier: raw 0-255 RGB in, preprocessing, backbone, dropout, softmax head.

The preprocessing is a layer inside the model, so a saved ``best.keras`` predicts from raw images
with nothing else to remember. Phase 1 trains ``head`` alone (on cached backbone features when
possible); phase 2 unfreezes the top of ``backbone``.

Example:
    >>> m = build_model(get_backbone("simple_cnn"), n_classes=3, image_size=16, weights="none",
    ...                 dropout=0.1, cache_dir=Path("/tmp"))
    >>> m.output_shape
    (None, 3)
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from kaggle_kit.model.backbones import Backbone, get_backbone  # noqa: F401  (re-exported for the example)
from kaggle_kit.registry import Registry

__all__ = ["PREPROCESS_MODES", "Preprocess", "DihedralView", "build_model", "build_head", "backbone_of",
           "feature_extractor", "partial_backbone", "top_model", "upper_backbone", "set_trainable", "layer_stages",
           "save_model", "load_model"]

# mode -> (scale, offset per channel, reverse channels); y = x * scale + offset after the flip
PREPROCESS_MODES: Registry[tuple[float, tuple[float, float, float], bool]] = Registry("preprocess mode")
PREPROCESS_MODES.add("raw", (1.0, (0.0, 0.0, 0.0), False))                     # model scales itself
PREPROCESS_MODES.add("unit", (1 / 255, (0.0, 0.0, 0.0), False))                # [0, 1]
PREPROCESS_MODES.add("tf", (1 / 127.5, (-1.0, -1.0, -1.0), False))            # [-1, 1]
PREPROCESS_MODES.add("lite", (1 / 128, (-127 / 128,) * 3, False))              # (x - 127) / 128
PREPROCESS_MODES.add("caffe", (1.0, (-103.939, -116.779, -123.68), True))      # BGR, mean-centred


@keras.saving.register_keras_serializable(package="kaggle_kit")
class Preprocess(layers.Layer):
    """Maps raw 0-255 RGB to what a backbone expects (see PREPROCESS_MODES)."""

    def __init__(self, mode: str = "raw", **kwargs) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        scale, offset, self.flip = PREPROCESS_MODES.get(mode)
        self.scale = float(scale)
        self.offset = np.array(offset, dtype="float32")

    def call(self, x):
        x = keras.ops.cast(x, self.compute_dtype)
        if self.flip:
            x = x[..., ::-1]
        return x * self.scale + keras.ops.cast(self.offset, self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="kaggle_kit")
class DihedralView(layers.Layer):
    """(N, S, S, C) images under one view of the square's symmetry group (``kaggle_kit.symmetry.VIEWS``):
    mirrored left to right when ``mirror``, then turned ``turns`` quarter turns counter-clockwise (as
    ``np.rot90``). A TTA view as a layer, so an exported ensemble (:mod:`kaggle_kit.prediction.export`)
    holds it in its graph; flips and transposes only, which every converter supports."""

    def __init__(self, turns: int = 0, mirror: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.turns, self.mirror = int(turns) % 4, bool(mirror)

    def call(self, x):
        if self.mirror:
            x = keras.ops.flip(x, axis=2)
        for _ in range(self.turns):
            x = keras.ops.flip(keras.ops.transpose(x, (0, 2, 1, 3)), axis=1)
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "turns": self.turns, "mirror": self.mirror}


def build_model(backbone: Backbone, *, n_classes: int, image_size: int, weights: str, dropout: float,
                cache_dir: Path) -> keras.Model:
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = Preprocess(backbone.preprocess, name="preprocess")(inputs)
    base = backbone.build(image_size, weights, cache_dir)
    features = base(x)
    outputs = _head(features, n_classes, dropout)
    return keras.Model(inputs, outputs, name=f"{backbone.short_name}_classifier")


def _head(features, n_classes: int, dropout: float):
    x = layers.Dropout(dropout, name="head_dropout")(features)
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="head")(x)


def build_head(feature_dim: int, n_classes: int, dropout: float) -> keras.Model:
    """The head alone, for training on cached features; its ``head`` layer matches the full model's."""
    inputs = keras.Input((feature_dim,), name="features")
    return keras.Model(inputs, _head(inputs, n_classes, dropout), name="head_only")


def backbone_of(model: keras.Model) -> keras.Model:
    return model.get_layer("backbone")


def feature_extractor(model: keras.Model) -> keras.Model:
    """Raw images -> pooled backbone features, sharing the model's layers."""
    return keras.Model(model.input, model.get_layer("head_dropout").input)


def partial_backbone(model: keras.Model, layer: str | None) -> keras.Model:
    """Raw images -> the output of backbone ``layer`` (None: the pooled features)."""
    if layer is None:
        return feature_extractor(model)
    base = backbone_of(model)
    bottom = keras.Model(base.input, _backbone_layer(base, layer).output)
    inputs = keras.Input(model.input.shape[1:])
    return keras.Model(inputs, bottom(model.get_layer("preprocess")(inputs)))


def top_model(model: keras.Model, layer: str, *, bn: str = "frozen") -> keras.Model:
    """The backbone above ``layer`` plus the head, as a model from that layer's output to the class
    probabilities. It shares weights with ``model``: training it trains the classifier's top.
    ``bn="frozen"`` keeps its BatchNorm layers' statistics and scales, ``"train"`` updates them."""
    upper = upper_backbone(model, layer)
    for lyr in upper.layers:
        lyr.trainable = bn == "train" or not isinstance(lyr, layers.BatchNormalization)
    inputs = keras.Input(upper.input.shape[1:])
    x = model.get_layer("head_dropout")(upper(inputs))
    return keras.Model(inputs, model.get_layer("head")(x), name="top")


def upper_backbone(model: keras.Model, layer: str) -> keras.Model:
    """The backbone above ``layer``: that layer's output -> the pooled features (shared weights)."""
    base = backbone_of(model)
    return keras.Model(_backbone_layer(base, layer).output, base.output)


def _backbone_layer(base: keras.Model, layer: str):
    from kaggle_kit.errors import KitError
    from kaggle_kit.registry import unknown_message

    try:
        return base.get_layer(layer)
    except ValueError:
        names = [lyr.name for lyr in base.layers]
        raise KitError(unknown_message(f"layer of backbone {base.name}", layer, names[-12:])) from None


def set_trainable(model: keras.Model, unfreeze: int, *, bn: str = "frozen") -> None:
    """Freeze the backbone except its top ``unfreeze`` layers; BatchNorm layers among them stay
    frozen (inference mode: ImageNet statistics) unless ``bn="train"``."""
    base = backbone_of(model)
    base.trainable = unfreeze > 0
    if unfreeze <= 0:
        return
    cut = max(0, len(base.layers) - unfreeze)
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cut and (bn == "train" or not isinstance(layer, layers.BatchNormalization))


def layer_stages(model: keras.Model, *, chunks: int = 4) -> dict[str, int]:
    """Backbone layer name -> its stage, 0 at the input, for layer-wise learning rates.

    A stage is a run of blocks of one output width, as in EfficientNet's and ResNet's tables: layers
    whose names share the part before the first ``_`` (``stem``, ``block7``, ``conv4``, ``top``) form
    a block, and a block whose output has another channel count than the block before starts a new
    stage. A backbone that gives fewer than two stages so is cut into ``chunks`` runs of equally many
    weighted layers instead.
    """
    weighted = [lyr for lyr in backbone_of(model).layers if lyr.weights]
    blocks: list[list] = []
    for lyr in weighted:
        if blocks and blocks[-1][0].name.split("_")[0] == lyr.name.split("_")[0]:
            blocks[-1].append(lyr)
        else:
            blocks.append([lyr])
    stages: dict[str, int] = {}
    stage, width = -1, None
    for block in blocks:
        out = block[-1].output.shape[-1]
        if out != width:
            stage, width = stage + 1, out
        stages.update({lyr.name: stage for lyr in block})
    if len(set(stages.values())) < 2:
        size = max(1, -(-len(weighted) // chunks))
        stages = {lyr.name: i // size for i, lyr in enumerate(weighted)}
    return stages


def save_model(model: keras.Model, path: Path) -> None:
    """Save atomically: a kill while writing leaves the previous checkpoint intact."""
    from kaggle_kit.atomic import atomic_path

    with atomic_path(Path(path), suffix=".keras") as tmp:
        model.save(tmp)


def _archive_damage(path: Path) -> str:
    """Why ``path`` is not a whole ``.keras`` zip archive, or "" if it reads cleanly."""
    import zipfile

    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, EOFError, OSError):
        return f"not a complete .keras archive, {size} bytes"
    return f"member {bad!r} is damaged" if bad else ""


def load_model(path: Path) -> keras.Model:
    """Load a saved classifier for prediction; a missing or damaged file is a one-line KitError."""
    from kaggle_kit.errors import KitError

    if not Path(path).is_file():
        raise KitError(f"{path}: checkpoint not found")
    damage = _archive_damage(Path(path))
    if damage:   # Keras would call it "File not found"
        raise KitError(f"{path}: checkpoint is truncated or corrupt ({damage}); train again or use another run")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a damaged archive
        raise KitError(f"{path}: cannot load checkpoint ({type(e).__name__}: {e})") from None

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

__all__ = ["PREPROCESS_MODES", "Preprocess", "FlipWidth", "build_model", "build_head", "backbone_of", "feature_extractor",
           "partial_backbone", "top_model", "upper_backbone", "set_trainable", "save_model", "load_model"]

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
class FlipWidth(layers.Layer):
    """Mirrors (N, H, W, C) images left to right: the flip TTA view as a layer, so an exported
    ensemble (:mod:`kaggle_kit.prediction.export`) holds it in its graph."""

    def call(self, x):
        return keras.ops.flip(x, axis=2)


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


def top_model(model: keras.Model, layer: str) -> keras.Model:
    """The backbone above ``layer`` plus the head, as a model from that layer's output to the class
    probabilities. It shares weights with ``model``: training it trains the classifier's top."""
    upper = upper_backbone(model, layer)
    for lyr in upper.layers:
        lyr.trainable = not isinstance(lyr, layers.BatchNormalization)
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


def set_trainable(model: keras.Model, unfreeze: int) -> None:
    """Freeze the backbone except its top ``unfreeze`` layers; BatchNorm layers always stay frozen."""
    base = backbone_of(model)
    base.trainable = unfreeze > 0
    if unfreeze <= 0:
        return
    cut = max(0, len(base.layers) - unfreeze)
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cut and not isinstance(layer, layers.BatchNormalization)


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

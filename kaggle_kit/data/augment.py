"""Augmentation presets by name: each entry builds what phase-2 training applies to a batch.

A preset is built for the plugin's symmetry group (:mod:`kaggle_kit.symmetry`): its flips and
quarter turns are the group's only (``none`` never mirrors), drawn in the same single resampling
pass as the rotation, shift, shear and zoom (:class:`~kaggle_kit.data.geometry.RandomAffine`).
The rest are Keras 3's own layers: ``RandAugment``, ``RandomErasing``, ``MixUp``, ``CutMix``
(MixUp and CutMix mix the one-hot labels with the images). Each entry states its facts for the
planner: ``passes`` (resampling passes), ``cost`` (time per image relative to ``light``, measured
in bench/RESULTS.md), ``strength`` (0 none .. 4 heaviest) and ``paths``, the training inputs it
applies to: ``images`` (decoded images), ``features`` (cached backbone features or activations:
only MixUp makes sense there, mixing two vectors and their labels; a geometric or pixel operation
has no meaning on a feature, the cached path gets its symmetry views as extra records instead).

Keras loads inside the factories, so listing the presets (``kaggle-kit --help``,
:func:`list_augments`, :meth:`TrainConfig.validate`) never imports TensorFlow.

Example:
    >>> list_augments()
    ['cutmix', 'erasing', 'flip', 'light', 'mixup', 'none', 'randaugment', 'seed', 'seed_chained', 'strong']
    >>> get_augment("mixup").paths
    ('images', 'features')
    >>> make_augment("none", seed=0) is None
    True
    >>> make_augment("flip", seed=0, symmetry="none") is None          # nothing to flip on digits
    True
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from kaggle_kit.registry import Registry

__all__ = ["Augment", "Augmentation", "AUGMENTS", "augment_preset", "get_augment", "list_augments", "make_augment",
           "make_feature_mix", "mix_features"]

Factory = Callable[[int, str], Any]     # (seed, symmetry) -> Augmentation, or None for no augmentation


@dataclass(frozen=True, kw_only=True)
class Augment:
    name: str
    factory: Factory
    description: str = ""
    passes: int = 0                           # resampling (interpolation) passes per image
    cost: float = 0.0                         # time per image relative to the light preset
    strength: int = 0                         # 0 none, 1 flips, 2 light geometry, 3 heavy geometry, 4 + mixing
    paths: tuple[str, ...] = ("images",)      # training inputs it applies to: images, features
    mixes_labels: bool = False                # MixUp/CutMix: the one-hot labels are mixed too


class Augmentation:
    """A batch ``(x, y)`` -> ``(x', y')``: image layers in order, then an optional label-mixing layer."""

    def __init__(self, layers: Sequence[Any], mix: Any = None) -> None:
        self.layers, self.mix = list(layers), mix

    def __call__(self, x: Any, y: Any) -> tuple[Any, Any]:
        for layer in self.layers:
            x = layer(x, training=True)
        if self.mix is not None:
            out = self.mix({"images": x, "labels": y}, training=True)
            x, y = out["images"], out["labels"]
        return x, y


AUGMENTS: Registry[Augment] = Registry("augmentation preset")


def augment_preset(name: str, *, passes: int = 0, cost: float = 0.0, strength: int = 0,
                   paths: tuple[str, ...] = ("images",), mixes_labels: bool = False) -> Callable[[Factory], Factory]:
    """Register ``factory(seed, symmetry)`` as preset ``name`` with its facts; its docstring's first
    line describes it."""

    def add(factory: Factory) -> Factory:
        doc = (inspect.getdoc(factory) or "").split("\n", 1)[0]
        AUGMENTS.add(name, Augment(name=name, factory=factory, description=doc, passes=passes, cost=cost,
                                   strength=strength, paths=paths, mixes_labels=mixes_labels),
                     source=factory.__code__.co_filename)
        return factory

    return add


def get_augment(name: str) -> Augment:
    return AUGMENTS.get(name)


def list_augments() -> list[str]:
    return AUGMENTS.names()


def make_augment(name: str, seed: int, symmetry: str = "hflip") -> Augmentation | None:
    """What preset ``name`` applies to an image batch (None: nothing), for images of ``symmetry``,
    its random layers seeded with ``seed``."""
    from kaggle_kit.symmetry import get_symmetry

    get_symmetry(symmetry)
    return AUGMENTS.get(name).factory(seed, symmetry)


def make_feature_mix(name: str, seed: int, alpha: float = 0.2) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    """What preset ``name`` applies on the cached-feature path: MixUp of features and labels for a
    preset whose ``paths`` hold ``features``, else None."""
    if "features" not in AUGMENTS.get(name).paths:
        return None
    return lambda x, y: mix_features(x, y, alpha=alpha, seed=seed)


def mix_features(x: Any, y: Any, *, alpha: float, seed: int = 0) -> tuple[Any, Any]:
    """MixUp of a batch of feature tensors (any rank) and one-hot labels with a shuffled copy of
    itself: ``lam * a + (1 - lam) * b``, ``lam ~ Beta(alpha, alpha)`` per example."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    g1 = tf.random.gamma((n,), alpha, seed=seed)
    g2 = tf.random.gamma((n,), alpha, seed=seed + 1)
    lam = g1 / (g1 + g2 + 1e-12)
    perm = tf.random.shuffle(tf.range(n), seed=seed + 2)
    lx = tf.reshape(lam, tf.concat([[n], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
    x = tf.cast(x, tf.float32)
    mixed_x = lx * x + (1 - lx) * tf.gather(x, perm)
    y = tf.cast(y, tf.float32)
    return mixed_x, lam[:, None] * y + (1 - lam[:, None]) * tf.gather(y, perm)


# -- the presets ------------------------------------------------------------------------------------
def _affine(seed: int, symmetry: str, **ranges: Any):
    from kaggle_kit.data.geometry import RandomAffine

    return RandomAffine(symmetry=symmetry, seed=seed, **ranges)


_LIGHT = {"rotation": 0.03, "zoom": 0.1, "shift": 0.1, "fill_mode": "reflect"}
_SEED = {"rotation": 20 / 360, "shift": 0.2, "shear": 0.2, "zoom": 0.2, "fill_mode": "nearest"}


@augment_preset("none")
def _none(seed: int, symmetry: str = "hflip"):
    """No augmentation."""
    return None


@augment_preset("flip", passes=1, cost=0.9, strength=1)
def _flip(seed: int, symmetry: str = "hflip"):
    """The flips and quarter turns the plugin's symmetry allows, exact (horizontal flips by default)."""
    from kaggle_kit.symmetry import get_symmetry

    if len(get_symmetry(symmetry).views) == 1:
        return None
    return Augmentation([_affine(seed, symmetry)])


@augment_preset("light", passes=1, cost=1.0, strength=2)
def _light(seed: int, symmetry: str = "hflip"):
    """Symmetry flips, small rotations (3%), zoom and shifts (10%), in one resampling pass; the default."""
    return Augmentation([_affine(seed, symmetry, **_LIGHT)])


@augment_preset("seed", passes=1, cost=1.0, strength=3)
def _seed(seed: int, symmetry: str = "hflip"):
    """What the course seeds gave ImageDataGenerator (rotation 20 deg, shifts, shear, zoom, flips), one pass."""
    return Augmentation([_affine(seed, symmetry, **_SEED)])


@augment_preset("seed_chained", passes=5, cost=5.1, strength=3)
def _seed_chained(seed: int, symmetry: str = "hflip"):
    """The seed preset as five chained Keras layers (five resampling passes; mirrors only)."""
    from keras import layers

    from kaggle_kit.symmetry import get_symmetry

    flip = [layers.RandomFlip("horizontal", seed=seed)] if get_symmetry(symmetry).mirrors else []
    return Augmentation([
        *flip,
        layers.RandomRotation(20 / 360, fill_mode="nearest", seed=seed),
        layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=seed),
        layers.RandomShear(x_factor=0.2, y_factor=0.0, fill_mode="nearest", seed=seed),
        layers.RandomZoom(0.2, fill_mode="nearest", seed=seed),
    ])


@augment_preset("strong", passes=1, cost=1.2, strength=3)
def _strong(seed: int, symmetry: str = "hflip"):
    """The seed preset plus brightness and contrast jitter."""
    from keras import layers

    return Augmentation([_affine(seed, symmetry, **_SEED),
                         layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed),
                         layers.RandomContrast(0.2, value_range=(0, 255), seed=seed)])


@augment_preset("randaugment", passes=3, cost=24.2, strength=3)
def _randaugment(seed: int, symmetry: str = "hflip"):
    """Symmetry flips, then Keras' RandAugment (2 random ops of 11, magnitude 0.5)."""
    from keras import layers

    return Augmentation([_affine(seed, symmetry),
                         layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, seed=seed)])


@augment_preset("erasing", passes=1, cost=3.2, strength=3)
def _erasing(seed: int, symmetry: str = "hflip"):
    """The light preset plus Keras' RandomErasing (one random box of 2-33 % of the image, noise-filled)."""
    from keras import layers

    return Augmentation([_affine(seed, symmetry, **_LIGHT),
                         layers.RandomErasing(factor=0.5, value_range=(0, 255), seed=seed)])


@augment_preset("mixup", passes=1, cost=1.2, strength=4, paths=("images", "features"), mixes_labels=True)
def _mixup(seed: int, symmetry: str = "hflip"):
    """The light preset plus Keras' MixUp (alpha 0.2) of images and one-hot labels; MixUp on cached features."""
    from keras import layers

    return Augmentation([_affine(seed, symmetry, **_LIGHT)], mix=layers.MixUp(alpha=0.2, seed=seed))


@augment_preset("cutmix", passes=1, cost=1.5, strength=4, mixes_labels=True)
def _cutmix(seed: int, symmetry: str = "hflip"):
    """The light preset plus Keras' CutMix (a box of another image, labels mixed by its area); images only."""
    from keras import layers

    return Augmentation([_affine(seed, symmetry, **_LIGHT)], mix=layers.CutMix(factor=1.0, seed=seed))

"""Augmentation presets by name: each entry builds the Keras layer stack phase-2 training applies.

Keras loads inside the factories, so listing the presets (``kaggle-kit --help``,
:func:`list_augments`, :meth:`TrainConfig.validate`) never imports TensorFlow.

Example:
    >>> list_augments()
    ['flip', 'light', 'none', 'seed', 'strong']
    >>> get_augment("strong").description
    'The seed preset plus brightness and contrast jitter.'
    >>> make_augment("none", seed=0) is None
    True
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from kaggle_kit.registry import Registry

__all__ = ["Augment", "AUGMENTS", "augment_preset", "get_augment", "list_augments", "make_augment"]


@dataclass(frozen=True, kw_only=True)
class Augment:
    name: str
    factory: Callable[[int], Any]     # seed -> a Keras layer stack, or None for no augmentation
    description: str = ""


AUGMENTS: Registry[Augment] = Registry("augmentation preset")


def augment_preset(name: str) -> Callable[[Callable[[int], Any]], Callable[[int], Any]]:
    """Register ``factory(seed)`` as preset ``name``; its docstring's first line describes it."""

    def add(factory: Callable[[int], Any]) -> Callable[[int], Any]:
        doc = (inspect.getdoc(factory) or "").split("\n", 1)[0]
        AUGMENTS.add(name, Augment(name=name, factory=factory, description=doc),
                     source=factory.__code__.co_filename)
        return factory

    return add


def get_augment(name: str) -> Augment:
    return AUGMENTS.get(name)


def list_augments() -> list[str]:
    return AUGMENTS.names()


def make_augment(name: str, seed: int):
    """The layer stack of preset ``name`` (None for ``none``), its random layers seeded with ``seed``."""
    return AUGMENTS.get(name).factory(seed)


@augment_preset("none")
def _none(seed: int):
    """No augmentation."""
    return None


@augment_preset("flip")
def _flip(seed: int):
    """Horizontal flips only."""
    import keras

    return keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed)], name="augment")


@augment_preset("light")
def _light(seed: int):
    """Flips, small rotations (3%), zoom and shifts (10%); the default."""
    from keras import Sequential, layers

    return Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.03, fill_mode="reflect", seed=seed),
        layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed),
    ], name="augment")


@augment_preset("seed")
def _seed(seed: int):
    """What the course seeds gave ImageDataGenerator: rotation 20 deg, shifts, shear, zoom, flips."""
    from keras import Sequential, layers

    return Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(20 / 360, fill_mode="nearest", seed=seed),
        layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=seed),
        layers.RandomShear(x_factor=0.2, y_factor=0.0, fill_mode="nearest", seed=seed),
        layers.RandomZoom(0.2, fill_mode="nearest", seed=seed),
    ], name="augment")


@augment_preset("strong")
def _strong(seed: int):
    """The seed preset plus brightness and contrast jitter."""
    from keras import Sequential, layers

    return Sequential([
        *_seed(seed).layers,
        layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed),
        layers.RandomContrast(0.2, value_range=(0, 255), seed=seed),
    ], name="augment")

"""The EfficientNet-Lite0 architecture in Keras 3 (randomly initialised) and its input scaling.

Lite0 is EfficientNet-B0's block table unscaled, with ReLU6 instead of swish and no squeeze-and-excite.

Example:
    >>> [b.index for b in blocks() if b.residual][:3], len(list(blocks()))
    ([2, 4, 6], 16)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from kaggle_kit.errors import KitError

if TYPE_CHECKING:
    import keras

__all__ = ["build_efficientnet_lite0", "preprocess", "blocks", "Block", "Stage", "STAGES", "MEAN", "SCALE",
           "BN_EPSILON", "STEM_FILTERS", "HEAD_FILTERS", "NUM_CLASSES"]

MEAN = 127.0   # preprocess: (pixel - MEAN) / SCALE, pixels in 0..255 RGB
SCALE = 128.0
BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_CLASSES = 1000


def preprocess(images: np.ndarray) -> np.ndarray:
    """RGB pixels in 0..255 -> the float32 input the ImageNet weights were trained on.

    >>> preprocess(np.array([0, 127, 255])).tolist()
    [-0.9921875, 0.0, 1.0]
    """
    return ((np.asarray(images, dtype=np.float32) - MEAN) / SCALE).astype(np.float32)



@dataclass(frozen=True, kw_only=True)
class Stage:
    """One row of the EfficientNet-B0 block table (Lite0 uses it unscaled)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


STAGES: tuple[Stage, ...] = tuple(
    Stage(repeats=r, kernel=k, stride=s, expand=e, filters_in=i, filters_out=o)
    for r, k, s, e, i, o in (
        (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
    )
)


@dataclass(frozen=True, kw_only=True)
class Block:
    """One inverted-residual block; ``index`` matches torch's ``_blocks.<index>``."""

    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def blocks() -> Iterator[Block]:
    """The 16 blocks in order: a stage's first repeat strides and changes width, the rest keep it."""
    index = 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            yield Block(index=index, kernel=stage.kernel, stride=stage.stride if repeat == 0 else 1,
                        expand=stage.expand,
                        filters_in=stage.filters_in if repeat == 0 else stage.filters_out,
                        filters_out=stage.filters_out)
            index += 1


_POOLINGS = {"avg": "GlobalAveragePooling2D", "max": "GlobalMaxPooling2D"}


def build_efficientnet_lite0(input_shape: tuple[int, int, int], *, include_top: bool = False,
                             pooling: str | None = "avg", name: str = "efficientnet_lite0") -> "keras.Model":
    """The Keras functional EfficientNet-Lite0, randomly initialised.

    Input is already preprocessed (:func:`preprocess`). ``include_top`` adds dropout and the
    1000-way softmax (with average pooling). Without it, ``pooling`` is ``"avg"`` or ``"max"`` for a
    1280-d vector, or ``None`` for the last feature map.
    """
    import keras
    from keras import layers

    if not include_top and pooling is not None and pooling not in _POOLINGS:
        raise KitError(f"unknown pooling {pooling!r}; use one of: {', '.join(_POOLINGS)} or None")

    def conv_bn_relu(x: Any, filters: int, kernel: int, stride: int, prefix: str, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
        return layers.ReLU(6.0, name=f"{prefix}_relu")(x) if relu else x

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, STEM_FILTERS, 3, 2, "stem")
    for block in blocks():
        p = f"block{block.index}"
        shortcut = x
        if block.expand != 1:
            x = conv_bn_relu(x, block.filters_in * block.expand, 1, 1, f"{p}_expand")
        x = layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same", use_bias=False,
                                   name=f"{p}_dwconv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{p}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{p}_dw_relu")(x)
        x = conv_bn_relu(x, block.filters_out, 1, 1, f"{p}_project", relu=False)
        if block.residual:
            x = layers.Add(name=f"{p}_add")([x, shortcut])
    x = conv_bn_relu(x, HEAD_FILTERS, 1, 1, "top")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)
    elif pooling is not None:
        x = getattr(layers, _POOLINGS[pooling])(name=f"{pooling}_pool")(x)
    return keras.Model(inputs, x, name=name)

"""The EfficientNet-Lite architectures (Lite0, Lite1, Lite2) in Keras 3, randomly initialised, and their input scaling.

A Lite variant is EfficientNet-B0's block table scaled by a (width, depth) pair with EfficientNet's
rounding (filters to a multiple of 8, repeats rounded up), with ReLU6 instead of swish and no
squeeze-and-excite. Unlike EfficientNet-B1..B7, the Lite variants keep the 32-filter stem, the
1280-filter head and the repeats of the first and last stages fixed.

Example:
    >>> [b.index for b in blocks() if b.residual][:3], len(list(blocks()))
    ([2, 4, 6], 16)
    >>> len(list(blocks("efficientnet_lite2"))), variant("efficientnet_lite2").default_size
    (21, 260)
    >>> round_filters(112, 1.1), round_repeats(3, 1.2)
    (120, 4)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from kaggle_kit.errors import KitError
from kaggle_kit.registry import Registry

if TYPE_CHECKING:
    import keras

__all__ = ["build_efficientnet_lite", "build_efficientnet_lite0", "preprocess", "blocks", "Block", "Stage",
           "Variant", "VARIANTS", "variant", "round_filters", "round_repeats", "STAGES", "MEAN", "SCALE",
           "BN_EPSILON", "STEM_FILTERS", "HEAD_FILTERS", "NUM_CLASSES", "DIVISOR"]

MEAN = 127.0   # preprocess: (pixel - MEAN) / SCALE, pixels in 0..255 RGB (the same for every Lite variant)
SCALE = 128.0
BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_CLASSES = 1000
DIVISOR = 8    # filters are rounded to a multiple of this


def preprocess(images: np.ndarray) -> np.ndarray:
    """RGB pixels in 0..255 -> the float32 input the ImageNet weights were trained on.

    >>> preprocess(np.array([0, 127, 255])).tolist()
    [-0.9921875, 0.0, 1.0]
    """
    return ((np.asarray(images, dtype=np.float32) - MEAN) / SCALE).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One member of the Lite family: its scaling and the facts of its ImageNet weights."""

    name: str
    width: float           # filter multiplier
    depth: float           # repeat multiplier
    default_size: int      # the input size it was trained at
    top1: float            # ImageNet top-1 accuracy (%) of the published weights
    dropout: float         # before the ImageNet classifier


VARIANTS: Registry[Variant] = Registry("EfficientNet-Lite variant")
for _v in (Variant(name="efficientnet_lite0", width=1.0, depth=1.0, default_size=224, top1=75.1, dropout=0.2),
           Variant(name="efficientnet_lite1", width=1.0, depth=1.1, default_size=240, top1=76.7, dropout=0.2),
           Variant(name="efficientnet_lite2", width=1.1, depth=1.2, default_size=260, top1=77.6, dropout=0.3)):
    VARIANTS.add(_v.name, _v)


def variant(name: str) -> Variant:
    """The variant called ``name``; an unknown one is an error listing the known ones."""
    return VARIANTS.get(name)


def round_filters(filters: int, width: float) -> int:
    """EfficientNet's filter rounding: scale, round to the nearest multiple of 8, never below 90 %."""
    scaled = filters * width
    rounded = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    return rounded + DIVISOR if rounded < 0.9 * scaled else rounded


def round_repeats(repeats: int, depth: float) -> int:
    """EfficientNet's repeat rounding: scale and round up."""
    return int(math.ceil(depth * repeats))


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
    stage: int             # its row of STAGES (the time planner cuts at a stage's end)
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def blocks(name: str = "efficientnet_lite0") -> Iterator[Block]:
    """The blocks of variant ``name`` in order: a stage's first repeat strides and changes width, the
    rest keep it. The first stage reads the fixed stem; the first and last stages are never repeated more."""
    v = variant(name)
    index = 0
    last = len(STAGES) - 1
    for i, stage in enumerate(STAGES):
        repeats = stage.repeats if i in (0, last) else round_repeats(stage.repeats, v.depth)
        filters_in = STEM_FILTERS if i == 0 else round_filters(stage.filters_in, v.width)
        filters_out = round_filters(stage.filters_out, v.width)
        for repeat in range(repeats):
            yield Block(index=index, stage=i, kernel=stage.kernel, stride=stage.stride if repeat == 0 else 1,
                        expand=stage.expand, filters_in=filters_in if repeat == 0 else filters_out,
                        filters_out=filters_out)
            index += 1


_POOLINGS = {"avg": "GlobalAveragePooling2D", "max": "GlobalMaxPooling2D"}


def build_efficientnet_lite(name: str, input_shape: tuple[int, int, int], *, include_top: bool = False,
                            pooling: str | None = "avg", model_name: str | None = None) -> "keras.Model":
    """The Keras functional EfficientNet-Lite variant ``name``, randomly initialised.

    Input is already preprocessed (:func:`preprocess`). ``include_top`` adds dropout and the
    1000-way softmax (with average pooling). Without it, ``pooling`` is ``"avg"`` or ``"max"`` for a
    1280-d vector, or ``None`` for the last feature map. Layer names do not depend on the variant
    (``stem_conv``, ``block<i>_...``, ``top_conv``), so ``--finetune-from block7_add`` means the same place.
    """
    import keras
    from keras import layers

    v = variant(name)
    if not include_top and pooling is not None and pooling not in _POOLINGS:
        raise KitError(f"unknown pooling {pooling!r}; use one of: {', '.join(_POOLINGS)} or None")

    def conv_bn_relu(x: Any, filters: int, kernel: int, stride: int, prefix: str, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
        return layers.ReLU(6.0, name=f"{prefix}_relu")(x) if relu else x

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, STEM_FILTERS, 3, 2, "stem")
    for block in blocks(v.name):
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
        x = layers.Dropout(v.dropout, name="top_dropout")(x)
        x = layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)
    elif pooling is not None:
        x = getattr(layers, _POOLINGS[pooling])(name=f"{pooling}_pool")(x)
    return keras.Model(inputs, x, name=model_name or v.name)


def build_efficientnet_lite0(input_shape: tuple[int, int, int], *, include_top: bool = False,
                             pooling: str | None = "avg", name: str = "efficientnet_lite0") -> "keras.Model":
    """:func:`build_efficientnet_lite` for Lite0 (the kit's default backbone)."""
    return build_efficientnet_lite("efficientnet_lite0", input_shape, include_top=include_top, pooling=pooling,
                                   model_name=name)

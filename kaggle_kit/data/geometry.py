"""Geometric augmentation in one resampling pass: flip/turn, rotate, shift, shear, zoom as one matrix.

Keras' chain ``RandomFlip -> RandomRotation -> RandomTranslation -> RandomShear -> RandomZoom``
resamples (interpolates) the image once per layer: five passes, five blurs. Each of those layers is
an affine map of the output pixel onto the input pixel it samples, so their product is one affine
map, and :class:`RandomAffine` draws every parameter per image, multiplies the matrices (in the
chain's order) and calls ``keras.ops.image.affine_transform`` once. The symmetry element (a
mirror, a quarter turn) is drawn from the plugin's group (:mod:`kaggle_kit.symmetry`), so
``none`` never mirrors. ``tests/test_geometry.py`` checks one pass equals the chained Keras layers
within interpolation; ``bench/augment.py`` times the two.

Example:
    >>> import numpy as np
    >>> layer = RandomAffine(size=8, symmetry="none", rotation=0.0, zoom=0.0, shift=0.0, shear=0.0)
    >>> x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    >>> bool(np.allclose(np.asarray(layer(x)), x, atol=1e-3))      # nothing drawn: the identity
    True
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from kaggle_kit.symmetry import get_symmetry, view_matrix

__all__ = ["RandomAffine", "affine_matrices", "apply_matrices", "view_transform", "zoom_about_centre"]


def affine_matrices(size: int, *, view: Any, angle: Any, zoom: Any, shift_x: Any, shift_y: Any,
                    shear: Any) -> Any:
    """Per-image 3x3 output-to-input matrices (a float32 tensor ``(B, 3, 3)``) of the chain
    view -> rotation (``angle`` radians) -> shift (fractions of the side) -> shear -> zoom (``zoom`` > 0
    zooms out, as ``RandomZoom``); ``view`` is a ``(B, 3, 3)`` tensor of symmetry matrices."""
    import tensorflow as tf

    c = (size - 1) / 2
    one, zero = tf.ones_like(angle), tf.zeros_like(angle)

    def mat(rows):
        return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)

    centre = mat([[one, zero, one * c], [zero, one, one * c], [zero, zero, one]])
    uncentre = mat([[one, zero, -one * c], [zero, one, -one * c], [zero, zero, one]])
    cos, sin = tf.cos(angle), tf.sin(angle)
    rotate = centre @ mat([[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]]) @ uncentre
    move = mat([[one, zero, -shift_x * size], [zero, one, -shift_y * size], [zero, zero, one]])
    skew = mat([[one, shear, zero], [zero, one, zero], [zero, zero, one]])       # about the corner, as RandomShear
    scale = centre @ mat([[1 + zoom, zero, zero], [zero, 1 + zoom, zero], [zero, zero, one]]) @ uncentre
    return tf.cast(view, tf.float32) @ rotate @ move @ skew @ scale


def apply_matrices(x: Any, matrices: Any, *, fill_mode: str = "reflect", interpolation: str = "bilinear") -> Any:
    """One resampling pass of images ``x`` (B, H, W, C) through per-image 3x3 matrices."""
    import keras
    import tensorflow as tf

    flat = tf.reshape(matrices, (-1, 9))[:, :8] / matrices[:, 2:3, 2]
    return keras.ops.image.affine_transform(x, flat, interpolation=interpolation, fill_mode=fill_mode)


def view_transform(name: str, x: Any) -> Any:
    """``x`` (a float tensor B, H, W, C, square) under symmetry view ``name``, exactly (no resampling)."""
    import tensorflow as tf

    from kaggle_kit.symmetry import VIEWS

    turns, mirror = VIEWS[name]
    if mirror:
        x = tf.reverse(x, axis=[2])
    return tf.image.rot90(x, turns) if turns else x


def zoom_about_centre(x: Any, factor: float) -> Any:
    """``x`` (B, S, S, C) magnified ``factor`` times about its centre, cropped to the same size (one
    bilinear pass; the scale view of test-time augmentation)."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    z = tf.fill((n,), 1.0 / factor - 1.0)
    zeros = tf.zeros((n,))
    eye = tf.eye(3, batch_shape=[n])
    m = affine_matrices(int(x.shape[1]), view=eye, angle=zeros, zoom=z, shift_x=zeros, shift_y=zeros, shear=zeros)
    return apply_matrices(x, m, fill_mode="reflect")


class RandomAffine:
    """Random symmetry element + rotation + shift + shear + zoom, drawn per image, in one pass.

    ``rotation``, ``zoom``, ``shift`` and ``shear`` are the ranges of the Keras layers of the same
    job (``RandomRotation(rotation)``: a fraction of a full turn; ``RandomZoom(zoom)``; ...), each drawn
    uniformly in ``[-r, r]``. Callable on a float batch; stateful random ops, so a ``tf.data`` map
    draws new parameters for every batch.
    """

    def __init__(self, *, size: int | None = None, symmetry: str = "hflip", rotation: float = 0.0, zoom: float = 0.0,
                 shift: float = 0.0, shear: float = 0.0, fill_mode: str = "reflect", seed: int = 0) -> None:
        self.size, self.rotation, self.zoom, self.shift, self.shear = size, rotation, zoom, shift, shear
        self.fill_mode, self.seed, self.symmetry = fill_mode, seed, symmetry
        self.view_names = get_symmetry(symmetry).views

    def matrices(self, batch: Any, size: int) -> Any:
        """``batch`` random matrices for ``size`` x ``size`` images."""
        import tensorflow as tf

        views = np.stack([view_matrix(v, size) for v in self.view_names]).astype(np.float32)

        def draw(r: float, salt: int):
            return tf.random.uniform((batch,), -r, r, seed=self.seed + salt) if r else tf.zeros((batch,))

        pick = tf.random.uniform((batch,), 0, len(views), dtype=tf.int32, seed=self.seed + 5)
        view = tf.gather(tf.constant(views), pick)
        return affine_matrices(size, view=view, angle=draw(self.rotation * 2 * math.pi, 0), zoom=draw(self.zoom, 1),
                               shift_x=draw(self.shift, 2), shift_y=draw(self.shift, 3), shear=draw(self.shear, 4))

    def __call__(self, x: Any, training: bool = True) -> Any:
        import tensorflow as tf

        x = tf.convert_to_tensor(x, tf.float32)
        if not training:
            return x
        size = self.size or int(x.shape[1])
        return apply_matrices(x, self.matrices(tf.shape(x)[0], size), fill_mode=self.fill_mode)

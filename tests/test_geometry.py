"""The one-pass geometric augmentation equals the chained Keras layers within interpolation."""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from kaggle_kit.data.geometry import RandomAffine, affine_matrices, apply_matrices, zoom_about_centre
from kaggle_kit.symmetry import apply_view, view_matrix

SIZE = 32


def smooth_batch(n: int = 2) -> np.ndarray:
    """A smooth (band-limited) image, so bilinear resampling errors stay small."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([np.sin(xx / 5.0) + yy / 10.0, np.cos(yy / 4.0) + xx / 12.0, xx * yy / 300.0], -1)
    return np.repeat((img * 50 + 100)[None].astype(np.float32), n, axis=0)


def one_pass(x: np.ndarray, *, view: str = "id", **params: float) -> np.ndarray:
    p = {"angle": 0.0, "zoom": 0.0, "shift_x": 0.0, "shift_y": 0.0, "shear": 0.0, **params}
    n = len(x)
    m = affine_matrices(SIZE, view=tf.constant(np.stack([view_matrix(view, SIZE)] * n), tf.float32),
                        **{k: tf.fill((n,), float(v)) for k, v in p.items()})
    return np.asarray(apply_matrices(x, m, fill_mode="reflect"))


def interior(a: np.ndarray) -> np.ndarray:
    return a[:, 8:-8, 8:-8]        # away from the border fill, where the two differ by design


def test_each_matrix_matches_its_keras_layer() -> None:
    import keras

    x = smooth_batch()
    rot = keras.layers.RandomRotation((0.05, 0.05), fill_mode="reflect")(x, training=True)
    zoom = keras.layers.RandomZoom((0.2, 0.2), fill_mode="reflect")(x, training=True)
    shift = keras.layers.RandomTranslation((0.1, 0.1), (0.15, 0.15), fill_mode="reflect")(x, training=True)
    assert np.abs(interior(np.asarray(rot)) - interior(one_pass(x, angle=0.05 * 2 * math.pi))).max() < 1e-2
    assert np.abs(interior(np.asarray(zoom)) - interior(one_pass(x, zoom=0.2))).max() < 1e-2
    assert np.abs(interior(np.asarray(shift)) - interior(one_pass(x, shift_x=0.15, shift_y=0.1))).max() < 1e-2


def test_one_composed_pass_equals_the_chained_layers_within_interpolation() -> None:
    import keras

    x = smooth_batch()
    chained = x[:, :, ::-1]                                                  # RandomFlip, mirrored
    for layer in (keras.layers.RandomRotation((0.04, 0.04), fill_mode="reflect"),
                  keras.layers.RandomTranslation((0.05, 0.05), (-0.05, -0.05), fill_mode="reflect"),
                  keras.layers.RandomZoom((0.1, 0.1), fill_mode="reflect")):
        chained = np.asarray(layer(chained, training=True))
    single = one_pass(x, view="hflip", angle=0.04 * 2 * math.pi, shift_x=-0.05, shift_y=0.05, zoom=0.1)
    diff = np.abs(interior(chained) - interior(single))
    assert diff.mean() < 1.0 and diff.max() < 6.0                           # of a 0-255 range
    assert np.abs(interior(chained) - interior(x)).mean() > 10               # a real transform, not a no-op


def test_views_as_matrices_are_exact_and_the_zoom_magnifies() -> None:
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    for view in ("hflip", "rot90", "rot270_hflip"):
        assert np.allclose(one_pass(x, view=view), apply_view(view, x), atol=1e-3), view
    layer = RandomAffine(symmetry="hflip", seed=0)
    out = np.asarray(layer(np.repeat(x[:1], 16, axis=0)))
    assert all(np.allclose(o, x[0], atol=1e-3) or np.allclose(o, x[0, :, ::-1], atol=1e-3) for o in out)
    big = np.asarray(zoom_about_centre(smooth_batch(1), 1.15))
    assert big.shape == (1, SIZE, SIZE, 3)
    assert abs(big[0, 15:17, 15:17] - smooth_batch(1)[0, 15:17, 15:17]).max() < 3     # the centre stays

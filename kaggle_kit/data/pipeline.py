"""tf.data input pipelines over the on-disk caches: read a batch by index, augment, prefetch.

Images stream from the decoded-image cache (never the whole dataset in memory); augmentation runs
in the pipeline on float batches (the presets are in :mod:`kaggle_kit.data.augment`); prefetching
overlaps input work with training.

Example:
    >>> import tempfile, numpy as np
    >>> from kaggle_kit.data.records import RecordFile
    >>> path = Path(tempfile.mkdtemp()) / "imgs.bin"
    >>> RecordFile.write(path, (8, 8, 3), np.uint8, [np.zeros((4, 8, 8, 3), np.uint8)])
    >>> ds = image_dataset(RecordFile(path, (8, 8, 3), np.uint8), np.arange(4), np.array([0, 1, 0, 1]),
    ...                    n_classes=2, batch_size=3)
    >>> [tuple(x.shape) for x, y in ds]
    [(3, 8, 8, 3), (1, 8, 8, 3)]
"""
from __future__ import annotations

from pathlib import Path  # noqa: F401  (used by the example)

import numpy as np
import tensorflow as tf

from kaggle_kit.data.records import RecordFile

__all__ = ["image_dataset", "feature_dataset"]


# -- datasets ---------------------------------------------------------------------------------------
def image_dataset(records: RecordFile, indices: np.ndarray, labels: np.ndarray | None, *, n_classes: int,
                  batch_size: int, shuffle: bool = False, seed: int = 0, augment=None,
                  flip: bool = False, view: str = "id", zoom: float = 1.0) -> tf.data.Dataset:
    """Batches of (float32 images 0-255, one-hot labels), or images alone when ``labels`` is None.

    ``augment`` (an :class:`~kaggle_kit.data.augment.Augmentation`) maps each training batch ``(x, y)``
    to ``(x', y')``. For test-time augmentation every image is shown under symmetry ``view``
    (:mod:`kaggle_kit.symmetry`; ``flip`` is the old spelling of ``view="hflip"``), then
    ``zoom``-ed about its centre (1.15: the object 15 % larger, cropped to the same size).
    """
    from kaggle_kit.data.geometry import view_transform, zoom_about_centre

    view = "hflip" if flip and view == "id" else view
    indices = np.asarray(indices, dtype=np.int64)
    shape = records.shape
    ds = tf.data.Dataset.from_tensor_slices(np.arange(len(indices)))
    if shuffle:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    label_arr = None if labels is None else np.asarray(labels, dtype=np.int64)

    def read(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = label_arr[pos] if label_arr is not None else np.zeros(len(pos), np.int64)
        return records.read(indices[pos]), y

    def load(pos):
        x, y = tf.numpy_function(read, [pos], [tf.uint8, tf.int64])
        x.set_shape((None, *shape))
        x = tf.cast(x, tf.float32)
        x = view_transform(view, x)
        if zoom != 1.0:
            x = zoom_about_centre(x, zoom)
        if labels is None:
            return x
        y.set_shape((None,))
        return x, tf.one_hot(y, n_classes)

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment is not None:
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def feature_dataset(features: RecordFile, indices: np.ndarray, labels: np.ndarray, *, n_classes: int,
                    batch_size: int, shuffle: bool, seed: int, mix=None) -> tf.data.Dataset:
    """Batches of (cached backbone features, one-hot labels) for training the head; ``mix`` (see
    :func:`~kaggle_kit.data.augment.make_feature_mix`) maps each batch ``(x, y)`` to ``(x', y')``."""
    indices = np.asarray(indices, dtype=np.int64)
    label_arr = np.asarray(labels, dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices(np.arange(len(indices)))
    if shuffle:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)

    def read(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return features.read(indices[pos]).astype(np.float32), label_arr[pos]

    def load(pos):
        x, y = tf.numpy_function(read, [pos], [tf.float32, tf.int64])
        x.set_shape((None, *features.shape))
        y.set_shape((None,))
        return x, tf.one_hot(y, n_classes)

    ds = ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if mix is not None:
        ds = ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

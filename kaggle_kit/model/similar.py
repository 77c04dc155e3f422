"""Copies the perceptual hash misses: rotated, flipped, shifted, cropped and colour-jittered versions of
one original, found by the similarity of pretrained backbone features, joined with the hash's groups.

Each image is described by the pooled features of the frozen ImageNet ``efficientnet_lite0`` (it ships
with the kit, so this works offline) at :data:`SIZE` px, taken of all eight flips and quarter turns of
the image, each L2-normalised, averaged: the *orbit mean*. A flipped or rotated copy has exactly the same
orbit mean as its original; shifts, crops and colour jitter move pooled features only a little. The
descriptors are cached like every backbone output (``kaggle-kit cache``), keyed by the images.

Two images are *similar* when the cosine of their descriptors is at least :data:`THRESHOLD` and at
least :data:`MARGIN` above the :func:`background` of each (its median cosine to the other images):
images that all look alike to the network (noise, one texture) are not copies of each other. Groups are
the connected components of similar pairs together with the perceptual-hash groups
(:func:`kaggle_kit.data.grouping.duplicate_groups`). Both numbers were chosen on data (docs/commands.md,
"Copies the hash misses"): on sets of 30 synthetic originals with 9 turned, flipped, shifted, cropped
and colour-jittered copies each, 0.89 groups 93-97% of the copies with no wrong join, while the 400
distinct CIFAR-10 photos of the demo competition keep all but one pair apart; copies stand 0.22 or
more above their background, pairs of random-noise images up to 0.22, most far less.

The search is blockwise (:func:`similar_pairs`): a block of rows times all later rows, about 16 MB of
scores at a time, so 50,000 images need no more memory than 500 do.
"""
from __future__ import annotations

import numpy as np

from kaggle_kit import events
from kaggle_kit.config import TrainConfig
from kaggle_kit.data.cache import Cache, cache_key
from kaggle_kit.data.grouping import duplicate_groups
from kaggle_kit.data.manifest import Manifest
from kaggle_kit.model.features import cached_outputs
from kaggle_kit.project import Project

__all__ = ["SIZE", "THRESHOLD", "MARGIN", "BACKBONE", "orbit_features", "background", "similar_pairs",
           "copy_groups"]

SIZE = 160                      # px: 96 and 128 px lose the detail that tells similar originals apart
THRESHOLD = 0.89                # cosine of orbit means, chosen on data (see above)
BACKBONE = "efficientnet_lite0"  # offline ImageNet weights
MARGIN = 0.15                   # and this far above how alike each image is to everything (see above)
_BLOCK_ELEMENTS = 1 << 22       # scores computed per block
_SAMPLE = 1024                  # images the background level of each image is measured against


def _orbit_mean(net, x: np.ndarray) -> np.ndarray:
    """The mean of the L2-normalised features of the eight flips and quarter turns of each image."""
    views = []
    for k in range(4):
        turned = np.rot90(x, k, axes=(1, 2))
        views += [turned, turned[:, :, ::-1]]
    out = np.asarray(net.predict_on_batch(np.concatenate(views)), np.float32).reshape(8, len(x), -1)
    out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return out.mean(0)


def orbit_features(project: Project, manifest: Manifest, *, size: int = SIZE,
                   report: events.Report = events.quiet) -> np.ndarray:
    """One L2-normalised float32 descriptor per manifest image (flip- and rotation-invariant), cached."""
    from kaggle_kit.model.classifier import partial_backbone

    config = TrainConfig(backbone=BACKBONE, weights="imagenet", image_size=size, resize="stretch")
    cache = Cache(project.cache)
    images = cache.images(manifest, size, "stretch", report=report)
    key = cache_key(v=1, images=images.path.name, backbone=BACKBONE, size=size, views="d8-mean")
    records = cached_outputs(project, config, "features", key, f"{len(images)} image descriptors (8 views each)",
                             lambda model: partial_backbone(model, None), images, len(images),
                             passes=(_orbit_mean,), batch=32,
                             meta={"n": len(images), "backbone": BACKBONE, "size": size, "views": "d8-mean"},
                             report=report)
    desc = np.asarray(records.read(range(len(images))), np.float32).reshape(len(images), -1)
    return desc / np.maximum(np.linalg.norm(desc, axis=1, keepdims=True), 1e-12)


def background(desc: np.ndarray, *, sample: int = _SAMPLE, block_elements: int = _BLOCK_ELEMENTS) -> np.ndarray:
    """Per row of ``desc``: the median cosine to the other rows (to a fixed random ``sample`` of them
    when there are more): how alike that image is to everything, the level a copy must stand above."""
    n = len(desc)
    cols = np.arange(n) if n <= sample else np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
    rows = max(1, block_elements // max(1, len(cols)))
    out = np.empty(n, desc.dtype)
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        scores = desc[r0:r1] @ desc[cols].T
        scores[np.arange(r0, r1)[:, None] == cols[None, :]] = np.nan     # not itself
        out[r0:r1] = np.nanmedian(scores, axis=1) if len(cols) > 1 else 0.0
    return out


def similar_pairs(desc: np.ndarray, threshold: float = THRESHOLD, *, margin: float = MARGIN,
                  block_elements: int = _BLOCK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j of rows of ``desc`` (L2-normalised) whose cosine is at least ``threshold`` and
    at least ``margin`` above the :func:`background` of both, computed ``block_elements`` scores at a time."""
    n = len(desc)
    level = background(desc, block_elements=block_elements) + margin
    rows = max(1, block_elements // max(1, n))
    found_i, found_j = [], []
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        scores = desc[r0:r1] @ desc[r0:].T          # this block against itself and every later row
        near = (scores >= threshold) & (scores >= level[r0:r1, None]) & (scores >= level[None, r0:])
        i, j = np.nonzero(near)
        i, j = i + r0, j + r0
        keep = j > i
        found_i.append(i[keep])
        found_j.append(j[keep])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(found_i).astype(np.int64), np.concatenate(found_j).astype(np.int64)


def copy_groups(project: Project, manifest: Manifest, *, threshold: float = THRESHOLD, size: int = SIZE,
                report: events.Report = events.quiet) -> list[str]:
    """One group label per manifest image: the perceptual-hash groups joined by feature similarity.

    Passed to :func:`kaggle_kit.training.folds.make_splits` as ``groups`` (``--group-duplicates``), it
    keeps every copy of an original, however it was turned, flipped, cropped or recoloured, on one side
    of each split.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(manifest)
    if n == 0:
        return []
    hashed = duplicate_groups(manifest, cache_dir=project.cache)
    first: dict[str, int] = {}
    hi = np.array([first.setdefault(g, k) for k, g in enumerate(hashed)], np.int64)   # each image -> its
    hj = np.arange(n, dtype=np.int64)                                                  # hash group's first
    fi, fj = similar_pairs(orbit_features(project, manifest, size=size, report=report), threshold)
    i, j = np.concatenate([hi, fi]), np.concatenate([hj, fj])
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    _, order, relabel = np.unique(labels, return_index=True, return_inverse=True)
    number = np.argsort(np.argsort(order))[relabel.ravel()]       # numbered in order of their first image
    return [f"dup{k}" for k in number]


"""Copies among the audited images: identical files and near-duplicate clusters in train, and test
images with a copy in train (perceptual hashes from :mod:`kaggle_kit.data.phash`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kaggle_kit.data.audit_record import Cluster, TrainCopy
from kaggle_kit.data.manifest import Manifest
from kaggle_kit.data.phash import FileHashes, nearest

__all__ = ["same_key", "exact_clusters", "clusters", "train_copies"]


def same_key(keys: Sequence[str]) -> list[list[int]]:
    """Indices sharing a key, for every key held by two or more."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def exact_clusters(train: Manifest, digests: Sequence[str], names: Sequence[str]) -> list[Cluster]:
    """The groups of identical train files (same bytes: same ``digests``)."""
    return [Cluster(ids=[train.ids[i] for i in g], labels=[names[train.labels[i]] for i in g])
            for g in same_key(digests)]


def clusters(train: Manifest, labels: np.ndarray, names: Sequence[str]) -> list[Cluster]:
    """The clusters of two or more train images, largest first."""
    members = same_key([str(n) for n in labels])
    members.sort(key=len, reverse=True)
    return [Cluster(ids=[train.ids[i] for i in g], labels=[names[train.labels[i]] for i in g]) for g in members]


def train_copies(train: Manifest, test: Manifest, h_train: FileHashes, h_test: FileHashes,
                 names: Sequence[str], threshold: float) -> list[TrainCopy]:
    index, diff = nearest(h_test.hashes, h_train.hashes, threshold)
    by_digest = {d: i for i, d in enumerate(h_train.digests)}
    out = []
    for q, digest in enumerate(h_test.digests):
        exact = by_digest.get(digest)
        j = exact if exact is not None else int(index[q])
        if j >= 0:
            out.append(TrainCopy(test_id=test.ids[q], train_id=train.ids[j], label=names[train.labels[j]],
                                difference=0.0 if exact is not None else round(float(diff[q]), 4),
                                exact=exact is not None))
    out.sort(key=lambda c: (c.difference, c.test_id))
    return out

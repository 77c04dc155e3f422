"""Computing an :class:`~kaggle_kit.data.audit_record.Audit`: check and hash the images, then the
statistics per class, the duplicates and the shortcuts. Progress goes to ``report`` as
:class:`~kaggle_kit.events.Stage` and :class:`~kaggle_kit.events.Progress` events."""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from kaggle_kit import events
from kaggle_kit.competition import Competition
from kaggle_kit.data.audit_record import Audit, GroupStats, Summary, Unreadable
from kaggle_kit.data.grouping import hash_cache
from kaggle_kit.data.images import ImageInfo
from kaggle_kit.data.manifest import build_manifest
from kaggle_kit.data.phash import DEFAULT_THRESHOLD, GROUP_COARSE_THRESHOLD, hash_files, near_graph
from kaggle_kit.model.similar import copy_groups
from kaggle_kit.project import Project
from kaggle_kit.tools.audit.duplicates import clusters, exact_clusters, train_copies
from kaggle_kit.tools.audit.shortcuts import find_shortcuts

__all__ = ["run_audit", "group_stats"]


def run_audit(project: Project, competition: Competition, *, threshold: float = DEFAULT_THRESHOLD,
              features: bool = True, report: events.Report = events.quiet) -> Audit:
    """Audit the competition's data (hashes and features are cached, so a second audit is fast); nothing
    is saved. ``features``: also find copies by backbone features (:mod:`kaggle_kit.model.similar`), which
    counts the originals behind the train set; without, groups come from the hashes alone."""
    root = project.data_root(competition.slug)

    def progress(task: str) -> Callable[[int, int], None]:
        return lambda done, total: report(events.Progress(task=task, done=done, total=total))

    report(events.Stage(message="checking images"))
    train = build_manifest(competition, root, "train", cache_dir=project.cache, progress=progress("check train"))
    test = build_manifest(competition, root, "test", cache_dir=project.cache, progress=progress("check test"))
    report(events.Stage(message=f"hashing {len(train) + len(test)} images (cached for later audits)"))
    hashes = hash_files([*train.paths, *test.paths], hash_cache(project.cache, root), progress("hash"))
    h_train, h_test = hashes.take(0, len(train)), hashes.take(len(train))
    names = competition.classes
    report(events.Stage(message="looking for duplicates and shortcuts"))
    graph = near_graph(h_train.hashes, threshold, coarse=GROUP_COARSE_THRESHOLD)
    if features and len(train):
        groups = np.unique(copy_groups(project, train, report=report), return_inverse=True)[1].ravel()
    else:
        groups = graph.clusters(coarse=True)
    return Audit(
        slug=competition.slug, data_root=str(root), created=time.strftime("%Y-%m-%d %H:%M:%S"),
        threshold=threshold, fingerprint=train.fingerprint,
        classes=[group_stats(names[c], train.infos, h_train.nbytes, train.labels == c) for c in range(len(names))],
        test=group_stats("test", test.infos, h_test.nbytes, np.ones(len(test), bool)) if len(test) else None,
        unreadable=[Unreadable(split=m.split, path=e.path, reason=e.reason) for m in (train, test) for e in m.excluded],
        exact_train=exact_clusters(train, h_train.digests, names),
        near_train=clusters(train, graph.clusters(), names),
        fold_groups=sorted((int(n) for n in np.bincount(groups) if n > 1), reverse=True),
        originals=int(len(np.unique(groups))) if features else 0,
        test_copies=train_copies(train, test, h_train, h_test, names, threshold),
        shortcuts=find_shortcuts(train.labels, train.infos, h_train.nbytes, names,
                                 test_infos=test.infos, test_nbytes=h_test.nbytes),
    )


def group_stats(name: str, infos: Sequence[ImageInfo], nbytes: np.ndarray, mask: np.ndarray) -> GroupStats:
    picked = [info for info, keep in zip(infos, mask) if keep]
    w = [i.width for i in picked]
    h = [i.height for i in picked]
    return GroupStats(
        name=name, count=len(picked), width=Summary.of(w), height=Summary.of(h),
        aspect=Summary.of([a / b for a, b in zip(w, h)]), kbytes=Summary.of(nbytes[mask] / 1024),
        sizes=Counter(f"{i.width}x{i.height}" for i in picked).most_common(3),
        modes=dict(Counter(i.mode for i in picked).most_common()),
        formats=dict(Counter(i.format for i in picked).most_common()),
    )

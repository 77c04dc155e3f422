"""The data audit behind ``kaggle-kit inspect``: what the images are, and what could mislead a model.

Per class: image counts, sizes, aspect ratios, file sizes, colour modes and formats; unreadable
files; exact duplicates (same bytes) and near-duplicates (perceptual hash, :mod:`kaggle_kit.data.phash`)
inside train and between train and test; and shortcuts: properties other than the content (image
size, area, aspect ratio, file size, colour mode, format) that predict the class under
cross-validation. The result is an :class:`Audit`, saved as ``data/<slug>/audit.json`` (in the project
cache when the data folder is read-only). The trainer reads its warnings with :func:`audit_warnings`
without recomputing anything, and :func:`~kaggle_kit.data.grouping.duplicate_groups` gives leak-aware folds
their groups.

The package: :mod:`.record` computes the :class:`Audit` (:func:`run_audit`), :mod:`.duplicates` finds
copies, :mod:`.shortcuts` scores the properties; the record itself and ``audit.json`` live in
:mod:`kaggle_kit.data.audit_record`, below training, which reads it.

Example:
    >>> from pathlib import Path
    >>> import tempfile, numpy as np, cv2
    >>> from kaggle_kit.competition import Competition, Submission
    >>> from kaggle_kit.layouts import ClassFolders
    >>> from kaggle_kit.project import Project
    >>> project = Project(Path(tempfile.mkdtemp()))
    >>> rng = np.random.default_rng(0)
    >>> for c, (w, h) in {"a": (20, 15), "b": (30, 40)}.items():
    ...     (project.data_root("toy") / "train" / c).mkdir(parents=True)
    ...     for k in range(12):
    ...         img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    ...         _ = cv2.imwrite(str(project.data_root("toy") / "train" / c / f"{k}.png"), img)
    >>> comp = Competition(slug="toy", classes=("a", "b"), metric="accuracy", train=ClassFolders(),
    ...                    submission=Submission())
    >>> audit = run_audit(project, comp)
    >>> [(s.name, s.count, s.sizes[0]) for s in audit.classes]
    [('a', 12, ('20x15', 12)), ('b', 12, ('30x40', 12))]
    >>> audit.warnings()[0].split(":")[0]
    'image size predicts the class'
"""
from __future__ import annotations

from kaggle_kit.data.audit_record import (AUDIT_FILE, Audit, Cluster, GroupStats, Shortcut, Summary, TrainCopy,
                                          Unreadable, audit_paths, audit_warnings, load_audit, save_audit)
from kaggle_kit.tools.audit.duplicates import clusters, exact_clusters, train_copies
from kaggle_kit.tools.audit.record import group_stats, run_audit
from kaggle_kit.tools.audit.shortcuts import FEATURES, Feature, find_shortcuts

__all__ = ["run_audit", "save_audit", "load_audit", "audit_paths", "audit_warnings", "AUDIT_FILE",
           "Audit", "Summary", "GroupStats", "Unreadable", "Cluster", "TrainCopy", "Shortcut",
           "group_stats", "clusters", "exact_clusters", "train_copies", "find_shortcuts", "FEATURES", "Feature"]

"""Scaffold a competition plugin from an unzipped data folder (``kaggle-kit new <slug>``).

:func:`infer_spec` looks at the folder: it recognises the training layout with the classes of
:mod:`kaggle_kit.layouts` (class sub-folders, a flat folder + labels CSV, the class in the file name),
finds the test folder, reads the sample submission for its id and label columns, guesses the metric and
the image size. :func:`render_plugin` writes that as plugin source with a comment on every guess
(``# inferred from ...``, ``# TO CHECK: ...``). :func:`scaffold` does both, writes
``competitions/<slug>.py`` and proves the file works: it loads it and lists the layout's images.

The package follows those steps: :mod:`.scan` (the folder, the sample submission), :mod:`.detect`
(test folder, training layout), :mod:`.infer` (submission format, metric, defaults, the spec),
:mod:`.render` (plugin source) and :mod:`.write` (write and validate).

Example:
    >>> import tempfile, cv2, numpy as np
    >>> from pathlib import Path
    >>> data = Path(tempfile.mkdtemp()) / "pets"
    >>> (data / "train").mkdir(parents=True)
    >>> for name in ("cat_1", "cat_2", "dog_1", "dog_2"):
    ...     _ = cv2.imwrite(str(data / "train" / f"{name}.png"), np.zeros((32, 32, 3), np.uint8))
    >>> spec = infer_spec("pets", data)
    >>> spec.classes, type(spec.train).__name__, spec.metric, spec.defaults
    (('cat', 'dog'), 'ClassInFilename', 'accuracy', {'image_size': 96})
    >>> "COMPETITION = Competition(" in render_plugin(spec)
    True
"""
from __future__ import annotations

from kaggle_kit.tools.scaffold.detect import DETECTORS, Candidate, find_test, find_train
from kaggle_kit.tools.scaffold.infer import PluginSpec, check_slug, infer_spec
from kaggle_kit.tools.scaffold.render import render_plugin
from kaggle_kit.tools.scaffold.scan import Finding, FolderScan, Sample, counts_text, find_sample, scan_folder
from kaggle_kit.tools.scaffold.check import CheckReport, check_plugin
from kaggle_kit.tools.scaffold.recipes import RECIPES, infer_recipes
from kaggle_kit.tools.scaffold.write import ScaffoldResult, plugin_path, scaffold, validate_plugin

__all__ = ["scaffold", "infer_spec", "render_plugin", "validate_plugin", "plugin_path", "check_slug",
           "scan_folder", "find_sample", "find_test", "find_train", "counts_text", "DETECTORS",
           "check_plugin", "infer_recipes", "RECIPES", "CheckReport",
           "Finding", "PluginSpec", "ScaffoldResult", "FolderScan", "Sample", "Candidate"]

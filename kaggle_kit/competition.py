"""A competition, as one plugin file states it: layout, classes, metric, submission format, recipes.

Plugins live in the project's ``competitions/`` folder, one file each, and define ``COMPETITION``.
Adding a competition never touches ``kaggle_kit/``.

Example (``competitions/cervix.py``):
    >>> from kaggle_kit.competition import Competition, Submission
    >>> from kaggle_kit.layouts import ClassFolders, TestFolder
    >>> COMPETITION = Competition(
    ...     slug="intel-mobileodt-cervical-cancer-screening",
    ...     classes=("Type_1", "Type_2", "Type_3"),
    ...     metric="log_loss",
    ...     train=ClassFolders(folder="train"),
    ...     test=TestFolder(folder="test"),
    ...     submission=Submission(id_column="image_name", labels="proba"),
    ... )
    >>> COMPETITION.submission.columns(COMPETITION.classes)
    ['image_name', 'Type_1', 'Type_2', 'Type_3']
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import ConfigError, DataError, KitError
from kaggle_kit.layouts import Layout, NoTest
from kaggle_kit.metrics import Metric, get_metric
from kaggle_kit.registry import UnknownName
from kaggle_kit.symmetry import SYMMETRIES

__all__ = ["Competition", "Submission"]


@dataclass(frozen=True, kw_only=True)
class Submission:
    """How the submission CSV looks.

    labels: ``name`` (the class name), ``index`` (its position in ``classes``) or ``proba``
    (one probability column per class, named by ``proba_columns`` or the class names).
    ids: ``name`` keeps the test file name (``img0.jpg``), ``stem`` drops the extension (``17``).
    sample: a sample submission file in the data folder; when present its id order is used
    and every id in it must be predicted.
    """

    id_column: str = "id"
    label_column: str = "label"
    labels: Literal["name", "index", "proba"] = "name"
    ids: Literal["name", "stem"] = "name"
    proba_columns: tuple[str, ...] | None = None
    sample: str | None = None

    def columns(self, classes: tuple[str, ...]) -> list[str]:
        if self.labels == "proba":
            return [self.id_column, *(self.proba_columns or classes)]
        return [self.id_column, self.label_column]

    def id_of(self, item_id: str) -> str:
        name = item_id.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if self.ids == "stem" else name


@dataclass(frozen=True, kw_only=True)
class Competition:
    slug: str
    classes: tuple[str, ...]
    metric: str
    train: Layout
    submission: Submission
    test: Layout = field(default_factory=NoTest)
    title: str = ""
    label_map: Mapping[str, str] = field(default_factory=dict)   # raw label in the data -> class name
    defaults: Mapping[str, Any] = field(default_factory=dict)    # TrainConfig fields for this competition
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # "fast", "best", ...
    group_column: str | None = None   # a labels-CSV column that groups images of one original
    group_pattern: str | None = None  # or a regex on the file name: its first group (else the match) is the key
    symmetries: str = "hflip"         # which flips/turns keep a class: none, hflip, d8 (kaggle_kit/symmetry.py)
    code_competition: bool = False    # Kaggle re-runs a notebook on a hidden test set: `submit --notebook`
    notebook_hours: float = 9.0       # a code competition's run-time limit for that notebook
    source: str = ""                  # the plugin file, filled in by the loader

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise KitError(f"{self.slug}: a competition needs at least two classes")
        if len(set(self.classes)) != len(self.classes):
            raise KitError(f"{self.slug}: class names repeat: {self.classes}")
        get_metric(self.metric)  # fails early, naming the known metrics
        try:
            SYMMETRIES.check(self.symmetries)
        except UnknownName as e:
            raise KitError(f"{self.slug}: symmetries: {e}") from None
        if not self.notebook_hours > 0:
            raise KitError(f"{self.slug}: notebook_hours must be > 0, got {self.notebook_hours!r}")
        if self.group_pattern is not None:
            if self.group_column:
                raise KitError(f"{self.slug}: set group_column or group_pattern, not both")
            try:
                re.compile(self.group_pattern)
            except re.error as e:
                raise KitError(f"{self.slug}: group_pattern r'{self.group_pattern}' is not a regular expression "
                               f"({e})") from None

    @property
    def scorer(self) -> Metric:
        return get_metric(self.metric)

    def class_index(self, raw_label: str, where: str) -> int:
        name = self.label_map.get(raw_label, raw_label)
        try:
            return self.classes.index(name)
        except ValueError:
            raise DataError(f"{where}: label {raw_label!r} is not a class of {self.slug} "
                            f"({', '.join(self.classes)})") from None

    def config(self, recipe: str | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
        """The training configuration: kit defaults < plugin defaults < recipe < overrides, validated
        (:meth:`TrainConfig.validate`); a bad value the plugin set names the plugin file."""
        cfg = TrainConfig().merged(self.defaults)
        layers: list[tuple[str, Mapping[str, Any]]] = [("defaults", self.defaults)]
        if recipe and recipe != "default":
            if recipe not in self.recipes:
                known = ", ".join(["default", *self.recipes])
                raise KitError(f"{self.slug} has no recipe {recipe!r}; known: {known}")
            cfg = cfg.merged(self.recipes[recipe])
            layers.append((f"recipe {recipe!r}", self.recipes[recipe]))
        overrides = overrides or {}
        cfg = cfg.merged(overrides)
        try:
            return cfg.validate()
        except ConfigError as e:
            if overrides.get(e.field) is not None:
                raise                       # the caller's own option
            setter = next((name for name, values in reversed(layers) if values.get(e.field) is not None), None)
            if setter is None:
                raise
            raise ConfigError(f"{self.source or self.slug} ({setter}): {e}", field=e.field) from None

    def sample_path(self, data_root: Path) -> Path | None:
        return data_root / self.submission.sample if self.submission.sample else None

"""kaggle-kit: a workflow kit for Kaggle image-classification competitions.

Data flows one way, one sub-package per stage (see docs/architecture.md)::

    competition spec -> data -> model -> training -> run record -> prediction -> submission -> kaggle

This module is the public API a notebook needs; ``kaggle_kit.cli`` is a thin layer over the same
functions and draws the same progress. Names are imported lazily, so ``import kaggle_kit`` (and
``kaggle-kit --help``) does not load TensorFlow.

Example:
    >>> import kaggle_kit
    >>> "efficientnet_lite0" in kaggle_kit.list_backbones()
    True
    >>> "log_loss" in kaggle_kit.list_metrics()
    True
    >>> kaggle_kit.TrainConfig(folds=3).folds
    3
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # the competition spec and the project
    "Project": "kaggle_kit.project",
    "Competition": "kaggle_kit.competition",
    "TrainConfig": "kaggle_kit.config",
    "KitError": "kaggle_kit.errors",
    "ConfigError": "kaggle_kit.errors",
    # the loop
    "fetch": "kaggle_kit.api",
    "train": "kaggle_kit.api",
    "blend": "kaggle_kit.api",
    "predict": "kaggle_kit.api",
    "export": "kaggle_kit.api",
    "list_export_formats": "kaggle_kit.prediction.export",
    "submit": "kaggle_kit.api",
    "status": "kaggle_kit.api",
    "best_run": "kaggle_kit.api",
    "list_runs": "kaggle_kit.api",
    "load_run": "kaggle_kit.api",
    "RunRecord": "kaggle_kit.training.runs",
    "BlendRecord": "kaggle_kit.training.runs",
    # what can be chosen (and a plugin's own metric)
    "list_backbones": "kaggle_kit.model.backbones",
    "list_metrics": "kaggle_kit.metrics",
    "register_metric": "kaggle_kit.metrics",
    "list_augments": "kaggle_kit.data.augment",
    "list_schedules": "kaggle_kit.training.schedules",
    "list_strategies": "kaggle_kit.model.strategy",
    "list_resize_modes": "kaggle_kit.data.resize",
    "list_layouts": "kaggle_kit.layouts",
    # progress
    "ProgressView": "kaggle_kit.progress",
    "events": "kaggle_kit.events",
}

__all__ = ["__version__", "Project", "Competition", "TrainConfig", "KitError", "ConfigError", "fetch", "train",
           "blend", "predict", "export", "list_export_formats", "submit", "status", "best_run", "list_runs",
           "load_run", "RunRecord", "BlendRecord", "list_backbones",
           "list_metrics", "register_metric", "list_augments", "list_schedules", "list_strategies",
           "list_resize_modes", "list_layouts", "ProgressView", "events"]
assert set(__all__) == {"__version__", *_EXPORTS}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kaggle_kit' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name != "events":
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

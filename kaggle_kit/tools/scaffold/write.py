"""Writing ``competitions/<slug>.py`` (:func:`scaffold`) and proving it works (:func:`validate_plugin`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.errors import KitError
from kaggle_kit.tools.scaffold.infer import PluginSpec, check_slug, infer_spec
from kaggle_kit.tools.scaffold.render import render_plugin

__all__ = ["Validation", "ScaffoldResult", "scaffold", "validate_plugin", "plugin_path"]


@dataclass(frozen=True, kw_only=True)
class Validation:
    """What loading the written plugin and listing its layouts gave; ``error`` when it failed."""

    train_images: int = 0
    test_images: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, kw_only=True)
class ScaffoldResult:
    path: Path                          # the plugin file written
    spec: PluginSpec
    validation: Validation


# -- writing and validating ------------------------------------------------------------------------
def plugin_path(competitions: Path, slug: str) -> Path:
    return Path(competitions) / f"{slug.replace('-', '_')}.py"


def validate_plugin(path: Path, data: Path) -> Validation:
    """Load the plugin, list its train and test images, map every label to a class and check the
    sample submission's ids against the test images: what training and submitting will do first."""
    from kaggle_kit.project import load_plugin
    from kaggle_kit.prediction.submission import expected_ids

    try:
        comp = load_plugin(path)
        train = comp.train.items(data)
        for item in train:
            comp.class_index(str(item.label), f"{path}: {item.path}")
        test = comp.test.items(data)
        if test:
            expected_ids(comp, data, [i.id for i in test])
    except KitError as e:
        return Validation(error=str(e))
    return Validation(train_images=len(train), test_images=len(test))


def scaffold(slug: str, data: Path, competitions: Path, *, force: bool = False,
             other_plugin_folders: Iterable[Path] = ()) -> ScaffoldResult:
    """Infer a plugin for ``slug`` from ``data``, write ``competitions/<slug>.py``, then validate it.

    Refuses to overwrite an existing file unless ``force``; refuses a slug whose plugin file already
    exists in ``other_plugin_folders`` (two plugins for one slug would clash when loaded).
    """
    check_slug(slug)
    path = plugin_path(competitions, slug)
    if path.exists() and not force:
        raise KitError(f"{path}: already exists; pass --force to overwrite it")
    for folder in other_plugin_folders:
        other = plugin_path(folder, slug)
        if other.exists() and other.resolve() != path.resolve():
            raise KitError(f"{other}: competition {slug!r} already has a plugin there; pick another slug")
    spec = infer_spec(slug, data)
    atomic_write_text(path, render_plugin(spec))
    return ScaffoldResult(path=path, spec=spec, validation=validate_plugin(path, spec.data))

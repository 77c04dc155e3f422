"""Writing ``competitions/<slug>.py`` (:func:`scaffold`) and proving it works (:func:`validate_plugin`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.errors import KitError
from kaggle_kit.tools.scaffold.check import CheckReport, check_plugin
from kaggle_kit.tools.scaffold.infer import PluginSpec, check_slug, infer_spec
from kaggle_kit.tools.scaffold.render import render_plugin
from kaggle_kit.tools.scaffold.scan import Finding

__all__ = ["ScaffoldResult", "scaffold", "validate_plugin", "plugin_path", "search_root", "inside"]


@dataclass(frozen=True, kw_only=True)
class ScaffoldResult:
    path: Path                          # the plugin file written
    spec: PluginSpec
    validation: CheckReport         # the written plugin checked against the data


# -- writing and validating ------------------------------------------------------------------------
def plugin_path(competitions: Path, slug: str) -> Path:
    return Path(competitions) / f"{slug.replace('-', '_')}.py"


def validate_plugin(path: Path, data: Path, shown: Callable[[Path], str] = str) -> CheckReport:
    """Load the plugin and check it against ``data`` (:func:`check_plugin`): what training and submitting
    will do first. A plugin that does not load is one problem."""
    from kaggle_kit.project import load_plugin

    try:
        comp = load_plugin(path)
    except KitError as e:
        return CheckReport(slug=path.stem, problems=(str(e),))
    return check_plugin(comp, data, shown)


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it (links resolved)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def search_root(data: Path, data_root: Path | None,
                shown: Callable[[Path], str] = str) -> tuple[Path, Finding | None]:
    """The folder to search and write paths relative to: ``data_root`` (``data/<slug>``, which training
    reads) whenever ``data`` lies inside it, so the plugin's paths start there; else ``data``."""
    if data_root is None or not inside(data, data_root) or Path(data).resolve() == Path(data_root).resolve():
        return Path(data), None
    rel = Path(data).resolve().relative_to(Path(data_root).resolve()).as_posix()
    return Path(data_root), Finding(field="data", value=f"{shown(Path(data_root))}/", reason=(
        f"--data {rel}/ is inside {shown(Path(data_root))}/, which training reads: searched all of it, and "
        f"every path is relative to it"))


def scaffold(slug: str, data: Path, competitions: Path, *, force: bool = False,
             other_plugin_folders: Iterable[Path] = (), data_root: Path | None = None,
             shown: Callable[[Path], str] = str) -> ScaffoldResult:
    """Infer a plugin for ``slug`` from ``data``, write ``competitions/<slug>.py``, then check it.

    ``data_root`` is the folder training will read (``data/<slug>``): when ``data`` lies inside it, all
    of ``data_root`` is searched and the paths are relative to it. Refuses to overwrite an existing
    file unless ``force``; refuses a slug whose plugin file already exists in ``other_plugin_folders``
    (two plugins for one slug would clash when loaded). ``shown`` writes paths in the check's messages.
    """
    check_slug(slug)
    path = plugin_path(competitions, slug)
    if path.exists() and not force:
        raise KitError(f"{path}: already exists; pass --force to overwrite it")
    for folder in other_plugin_folders:
        other = plugin_path(folder, slug)
        if other.exists() and other.resolve() != path.resolve():
            raise KitError(f"{other}: competition {slug!r} already has a plugin there; pick another slug")
    root, note = search_root(Path(data), data_root, shown)
    spec = infer_spec(slug, root)
    if note is not None:
        spec = dataclasses.replace(spec, findings=(note, *spec.findings))
    atomic_write_text(path, render_plugin(spec))
    return ScaffoldResult(path=path, spec=spec, validation=validate_plugin(path, spec.data, shown))

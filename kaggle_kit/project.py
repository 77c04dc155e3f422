"""Where things live: the project folder, its plugins, data, checkpoints, submissions and caches.

The project folder is ``$KAGGLE_KIT_HOME`` if set; else, inside a Kaggle notebook
(``$KAGGLE_KERNEL_RUN_TYPE`` set), ``/kaggle/working``, the notebook's one writable folder; else the
nearest folder at or above the current directory holding ``competitions/`` or ``.kaggle-kit``, else the
current directory. A competition's data is read in place from ``/kaggle/input/<slug>`` (or
``/kaggle/input/competitions/<slug>``) when that folder exists, never written; ``$KAGGLE_KIT_KAGGLE_ROOT``
stands for ``/kaggle`` (tests simulate a notebook with it).

Example:
    >>> import tempfile
    >>> p = Project(Path(tempfile.mkdtemp()))
    >>> p.run_dir("cifar-10", "r1").relative_to(p.root).as_posix()
    'checkpoints/cifar-10/r1'
"""
from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_kit.registry import unknown_message

__all__ = ["Project", "Plugins", "load_plugin", "DEFAULT_FILE", "BUNDLED", "kaggle_root", "kaggle_input",
           "kaggle_working", "in_kaggle_notebook"]

DEFAULT_FILE = ".kaggle-kit"            # holds "competition=<slug>", written by fetch and `use`
BUNDLED = Path(__file__).parent / "bundled"  # competitions shipped with the package (the demo)


def kaggle_root() -> Path:
    """``/kaggle`` (``$KAGGLE_KIT_KAGGLE_ROOT`` if set): ``input/`` is read-only data, ``working/`` the output."""
    return Path(os.environ.get("KAGGLE_KIT_KAGGLE_ROOT") or "/kaggle")


def in_kaggle_notebook() -> bool:
    """Whether this runs in a Kaggle notebook: Kaggle sets ``KAGGLE_KERNEL_RUN_TYPE`` (Interactive, Batch)."""
    return bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE"))


def kaggle_input() -> Path:
    """A Kaggle notebook's read-only input folder: ``$KAGGLE_KIT_INPUT_ROOT`` (set by the local server, which
    cannot write ``/kaggle``), else :func:`kaggle_root`'s ``input/``."""
    return Path(os.environ.get("KAGGLE_KIT_INPUT_ROOT") or kaggle_root() / "input")


def kaggle_working() -> Path:
    """A Kaggle notebook's writable folder: ``$KAGGLE_KIT_WORKING`` (the local server's), else :func:`kaggle_root`'s
    ``working/``."""
    return Path(os.environ.get("KAGGLE_KIT_WORKING") or kaggle_root() / "working")


@dataclass(frozen=True)
class Plugins:
    competitions: dict[str, Competition]
    errors: tuple[str, ...]          # one line per plugin file that failed to load, naming the file


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> "Project":
        env = os.environ.get("KAGGLE_KIT_HOME")
        if env:
            return cls(Path(env).resolve())
        if in_kaggle_notebook():
            return cls(kaggle_working())
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "competitions").is_dir() or (folder / DEFAULT_FILE).is_file():
                return cls(folder)
        return cls(here)

    # -- folders -----------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def submissions(self) -> Path:
        return self.root / "submissions"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def cache(self) -> Path:
        return Path(os.environ.get("KAGGLE_KIT_CACHE") or self.root / ".cache")

    def data_root(self, slug: str) -> Path:
        """``data/<slug>``, or the read-only ``/kaggle/input/<slug>`` (``.../competitions/<slug>``, as newer
        notebooks mount it) where the folder exists: in a Kaggle notebook with the competition attached."""
        mounted = kaggle_input()
        for kaggle in (mounted / slug, mounted / "competitions" / slug):
            if kaggle.is_dir():
                return kaggle
        return self.root / "data" / slug

    def run_dir(self, slug: str, run_id: str) -> Path:
        return self.checkpoints / slug / run_id

    # -- plugins -----------------------------------------------------------------------------
    @cached_property
    def plugins(self) -> "Plugins":
        """Every plugin file, loaded: a file that fails to import is one error line, not the end of the
        others (two plugins defining one slug are still refused outright, except that a project's own
        plugin replaces a bundled one of the same slug)."""
        found: dict[str, Competition] = {}
        errors: list[str] = []
        for folder in self.plugin_folders():
            for path in sorted(folder.glob("*.py")):
                if path.name.startswith("_"):
                    continue
                try:
                    comp = load_plugin(path)
                except KitError as e:
                    errors.append(str(e))
                    continue
                if comp.slug in found:
                    if folder == BUNDLED:
                        continue             # the project's own plugin of a bundled competition wins
                    raise KitError(f"{path}: competition {comp.slug!r} is already defined in {found[comp.slug].source}")
                found[comp.slug] = comp
        return Plugins(found, tuple(errors))

    @property
    def competitions(self) -> dict[str, Competition]:
        """The competitions of every plugin that loads (see :attr:`plugins` for those that do not)."""
        return self.plugins.competitions

    def plugin_folders(self) -> list[Path]:
        """The project's ``competitions/``, the folders of ``$KAGGLE_KIT_COMPETITIONS``, the bundled ones;
        each once (a folder named twice, as the project's own in the variable, is read once)."""
        extra = [Path(p) for p in os.environ.get("KAGGLE_KIT_COMPETITIONS", "").split(os.pathsep) if p]
        seen: set[Path] = set()
        folders = []
        for folder in (self.root / "competitions", *extra, BUNDLED):
            if folder.is_dir() and folder.resolve() not in seen:
                seen.add(folder.resolve())
                folders.append(folder)
        return folders

    def competition(self, slug: str | None = None) -> Competition:
        """The named competition, or the default one (see :meth:`default_slug`)."""
        slug = slug or self.default_slug()
        if slug is None:
            raise KitError("no competition named and no default set: pass one (e.g. `kaggle-kit train "
                           "cifar-10`), run `kaggle-kit use <slug>`, or set KAGGLE_KIT_COMPETITION")
        try:
            return self.competitions[slug]
        except KeyError:
            broken = self.plugins.errors
            for error in broken:   # the plugin file named after the slug failed: its own error says why
                if Path(error.split(":", 1)[0]).stem.replace("_", "-") == slug.replace("_", "-"):
                    raise KitError(error) from None
            message = unknown_message("competition", slug, sorted(self.competitions))
            if broken:
                message += f"; {len(broken)} plugin(s) failed to load: " + "; ".join(broken)
            raise KitError(message) from None

    def default_slug(self) -> str | None:
        """$KAGGLE_KIT_COMPETITION, else the folder you are in (data/<slug>, checkpoints/<slug>),
        else the project default that `fetch` and `use` write to ``.kaggle-kit``."""
        env = os.environ.get("KAGGLE_KIT_COMPETITION")
        if env:
            return env
        cwd = Path.cwd().resolve()
        for base in (self.root / "data", self.checkpoints, self.submissions):
            try:
                rel = cwd.relative_to(base.resolve())
            except ValueError:
                continue
            if rel.parts:
                return rel.parts[0]
        marker = self.root / DEFAULT_FILE
        if marker.is_file():
            for line in marker.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "competition" and value.strip():
                    return value.strip()
        return None

    def set_default(self, slug: str) -> None:
        from kaggle_kit.atomic import atomic_write_text

        atomic_write_text(self.root / DEFAULT_FILE, f"competition={slug}\n")


def load_plugin(path: Path) -> Competition:
    """Import one plugin file and return its ``COMPETITION``."""
    name = f"kaggle_kit_plugins.{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KitError as e:
        raise KitError(f"{path}: {e}") from None
    except Exception as e:  # a plugin is user code: report where it broke, in one line
        raise KitError(f"{path}: plugin failed to load: {type(e).__name__}: {e}") from None
    comp = getattr(module, "COMPETITION", None)
    if not isinstance(comp, Competition):
        raise KitError(f"{path}: a plugin must define COMPETITION = Competition(...)")
    object.__setattr__(comp, "source", str(path))
    return comp

"""A tiny name -> entry registry, so metrics, layouts, backbones, schedules... are data, not if-chains.

An entry is registered where the thing is defined, carrying its facts (timm's ``_registry.py``
pattern); code elsewhere reads those facts instead of testing names.

Example:
    >>> colours = Registry("colour")
    >>> @colours.register("red")
    ... def red() -> str:
    ...     return "#f00"
    >>> colours.get("red")()
    '#f00'
    >>> colours.names(), "red" in colours
    (['red'], True)
    >>> colours.get("rde")
    Traceback (most recent call last):
    ...
    kaggle_kit.registry.UnknownName: unknown colour 'rde'; did you mean red? Known: red
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from kaggle_kit.errors import KitError

__all__ = ["Registry", "UnknownName", "unknown_message"]

T = TypeVar("T")


class UnknownName(KitError):
    """A name that no registry entry has."""


class Registry(Generic[T]):
    """Maps names to entries; the decorator form registers the decorated object."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._sources: dict[str, str | None] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T, *, source: str | None = None) -> None:
        """Register ``obj`` as ``name``. A second entry of the same name is an error, unless both
        name the same ``source`` file: a plugin file loaded again replaces its own entry."""
        if name in self._items:
            first = self._sources[name]
            if source is None or source != first:
                where = f" (first in {first})" if first else ""
                raise KitError(f"{self.kind} {name!r} is registered twice{where}")
        self._items[name] = obj
        self._sources[name] = source

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(unknown_message(self.kind, name, self.names())) from None

    def check(self, name: str) -> None:
        """Raise :class:`UnknownName` (with close matches) unless ``name`` is registered."""
        self.get(name)

    def names(self) -> list[str]:
        return sorted(self._items)

    def entries(self) -> list[T]:
        """The entries in name order."""
        return [self._items[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    """'unknown backbone 'x'; did you mean ...? Known: a, b' as one line."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} Known: {', '.join(known) or '(none)'}"

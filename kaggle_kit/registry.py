"""A tiny name -> factory registry, so metrics, layouts and backbones are data, not if-chains.

Example:
    >>> colours = Registry("colour")
    >>> @colours.register("red")
    ... def red() -> str:
    ...     return "#f00"
    >>> colours.get("red")()
    '#f00'
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from kaggle_kit.errors import KitError

T = TypeVar("T")


class UnknownName(KitError):
    """A name that no registry entry has."""


class Registry(Generic[T]):
    """Maps names to objects; the decorator form registers the decorated object."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise KitError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(unknown_message(self.kind, name, self.names())) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    """'unknown backbone 'x'; did you mean ...? Known: a, b' as one line."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} Known: {', '.join(known) or '(none)'}"

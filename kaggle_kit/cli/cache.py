"""``kaggle-kit cache ls|clear``: list the on-disk caches of images and backbone outputs, or remove them.

The caches live in the project's ``.cache/`` (or ``$KAGGLE_KIT_CACHE``) and are bounded by
``$KAGGLE_KIT_CACHE_GB`` (default 20): the least recently used entries go first.
"""
from __future__ import annotations

import argparse
import time

from kaggle_kit.cli.base import arg, command, console

__all__ = []

KINDS = ("images", "features", "activations")   # what the trainer caches (see kaggle_kit.data.cache)


def size_text(n: int) -> str:
    """``1536`` -> ``'1.5 KB'``; decimal units, as disks are sold."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def describe(meta: dict) -> str:
    """What an entry holds, from its JSON: ``efficientnet_lite0 128px``, ``train 96px stretch``."""
    if meta.get("backbone"):
        layer = f" {meta['layer']}" if meta.get("layer") else ""
        return f"{meta['backbone']}{layer} {meta.get('size', '?')}px"
    return f"{meta.get('split', '?')} {meta.get('size', '?')}px {meta.get('resize', '')}".rstrip()


@command("cache", "list (ls) or remove (clear) the cached decoded images and backbone outputs",
         arg("action", choices=["ls", "clear"], help="ls: list the entries; clear: remove them"),
         arg("--kind", choices=list(KINDS), help="only this kind of entry (default: both)"))
def cache_cmd(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from kaggle_kit.data.cache import Cache
    from kaggle_kit.project import Project

    cache = Cache(Project.find().cache)
    out = console()
    if args.action == "clear":
        freed = cache.clear(args.kind)
        out.print(f"freed {size_text(freed)} of {args.kind or 'cached images and backbone outputs'} in "
                  f"{escape(str(cache.root))}")
        return 0
    entries = [e for e in cache.entries() if e.kind in KINDS and args.kind in (None, e.kind)]
    if not entries:
        out.print(f"no cached {args.kind or 'images or backbone outputs'} in {escape(str(cache.root))}")
        return 0
    table = Table("kind", "key", "size", "images", "holds", "last used", box=None)
    for e in sorted(entries, key=lambda e: e.last_used, reverse=True):
        table.add_row(e.kind, e.key[:12], size_text(e.bytes), str(e.meta.get("n", "?")), escape(describe(e.meta)),
                      time.strftime("%m-%d %H:%M", time.localtime(e.last_used)))
    out.print(table)
    out.print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {size_text(sum(e.bytes for e in entries))} "
              f"in {escape(str(cache.root))} (bound {size_text(cache.max_bytes)}, KAGGLE_KIT_CACHE_GB; least "
              f"recently used entries go first)")
    return 0

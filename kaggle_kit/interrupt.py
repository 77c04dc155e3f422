"""Ctrl-C taken at a safe point.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside TensorFlow's or
h5py's own bookkeeping (a checkpoint half written, a batch half run) a native library left half-way
can crash the process (``free(): invalid next size``, seen once on CI) before the run is saved as
interrupted. While :func:`deferred` is active the first Ctrl-C only sets a flag, and :func:`check`
raises KeyboardInterrupt at the next safe point: the trainer checks after every batch and between
the batches it caches. A second Ctrl-C raises at once, so a user is never stuck.

Outside the main thread, or where SIGINT is not Python's default handler (ignored in a background
job, or somebody else's handler), :func:`deferred` changes nothing.

Example:
    >>> import os, signal
    >>> try:
    ...     with deferred():
    ...         os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C, in the middle of some work
    ...         print("the work goes on to its end")
    ... except KeyboardInterrupt:
    ...     print("then the interrupt is raised")
    the work goes on to its end
    then the interrupt is raised
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["Interrupted", "requested", "check", "deferred"]

_requested = False


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C on its way out, carrying the line to show (e.g. how to resume the run it stopped)."""


def _on_sigint(signum: int, frame: object) -> None:
    global _requested
    if _requested:                # the second Ctrl-C: at once
        raise KeyboardInterrupt
    _requested = True


def requested() -> bool:
    """Whether a Ctrl-C is waiting for the next safe point."""
    return _requested


def check() -> None:
    """A safe point: raise KeyboardInterrupt if Ctrl-C was pressed inside :func:`deferred`."""
    if _requested:
        raise KeyboardInterrupt


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C until :func:`check` or the end of the block (where it is raised if still pending)."""
    global _requested
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield                     # not ours to change (or an outer deferred() already holds it)
        return
    _requested = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        pending, _requested = _requested, False
    if pending:
        raise KeyboardInterrupt

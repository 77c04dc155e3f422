"""Ctrl-C taken at a safe point.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside TensorFlow's or
h5py's own bookkeeping (a checkpoint half written, a batch half run) a native library left half-way
can crash the process (``free(): invalid next size``, seen once on CI) before the run is saved as
interrupted. While :func:`deferred` is active the first Ctrl-C only sets a flag, and :func:`check`
raises KeyboardInterrupt at the next safe point: the trainer checks after every batch and between
the batches it caches. A second Ctrl-C raises at once, so a user is never stuck.

Outside the main thread, or where SIGINT is not Python's default handler (ignored in a background
job, or somebody else's handler), :func:`deferred` changes nothing.

Every Ctrl-C is also counted (:func:`presses`) while :func:`counting` is active (the CLI turns it on
for the whole command) or inside :func:`deferred`: Python's own code can swallow one (``Popen.wait``
catches the first KeyboardInterrupt and waits a moment for the child), so code that must give up at
once on the second press, such as the ``--parallel-folds`` parent stopping its workers, asks for the
count instead of relying on where the exceptions were raised.

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

__all__ = ["Interrupted", "requested", "check", "deferred", "counting", "presses"]

_requested = False
_presses = 0


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C on its way out, carrying the line to show (e.g. how to resume the run it stopped)."""


def _on_sigint(signum: int, frame: object) -> None:
    global _requested, _presses
    _presses += 1
    if _requested:                # the second Ctrl-C: at once
        raise KeyboardInterrupt
    _requested = True


def _count_and_raise(signum: int, frame: object) -> None:
    """Python's default Ctrl-C (raise KeyboardInterrupt), counted."""
    global _presses
    _presses += 1
    raise KeyboardInterrupt


def presses() -> int:
    """How many Ctrl-C this process has had while counting (see :func:`counting`)."""
    return _presses


@contextmanager
def counting() -> Iterator[None]:
    """Count every Ctrl-C in the block; otherwise Ctrl-C behaves as Python's default (in the main thread,
    when SIGINT has its default handler; elsewhere nothing changes)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    previous = signal.signal(signal.SIGINT, _count_and_raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
            or signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, _count_and_raise)):
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

"""Connect and read timeouts for every HTTP request the official ``kaggle`` client makes for the kit.

The client sends its API calls through a ``requests.Session`` with no timeout, uploads through
sessions of its own and downloads with ``requests.request``: a server or proxy that accepts the
connection and never answers hangs it for ever. All of those reach the network through
``requests.adapters.HTTPAdapter.send``, so that is the one place the kit sets a timeout: while
:func:`bounded` is active (the kit wraps each client call in it), every request of the current
thread or task gets ``(connect, read)`` from :class:`Timeouts`; requests made outside it keep
their own behaviour. The defaults (15 s to connect, 120 s between bytes read) come from
``KAGGLE_KIT_CONNECT_TIMEOUT`` and ``KAGGLE_KIT_READ_TIMEOUT``.

Example:
    >>> Timeouts(connect=2, read=5).as_requests()
    (2.0, 5.0)
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from kaggle_kit.errors import KitError

__all__ = ["Timeouts", "bounded", "is_timeout", "ENV_CONNECT", "ENV_READ"]

ENV_CONNECT = "KAGGLE_KIT_CONNECT_TIMEOUT"
ENV_READ = "KAGGLE_KIT_READ_TIMEOUT"


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise KitError(f"{name}={raw!r}: not a number of seconds") from None
    if value <= 0:
        raise KitError(f"{name}={raw!r}: must be more than 0 seconds")
    return value


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Seconds to wait for a connection, and for each read of an answer (not for the whole transfer)."""

    connect: float = 15.0
    read: float = 120.0

    def __post_init__(self) -> None:
        if not (self.connect > 0 and self.read > 0):
            raise KitError(f"timeouts must be more than 0 seconds, got {self}")

    @classmethod
    def from_env(cls) -> "Timeouts":
        return cls(connect=_seconds(ENV_CONNECT, cls.connect), read=_seconds(ENV_READ, cls.read))

    def as_requests(self) -> tuple[float, float]:
        return float(self.connect), float(self.read)


_ACTIVE: contextvars.ContextVar[Timeouts | None] = contextvars.ContextVar("kaggle_kit_timeouts", default=None)
_INSTALL_LOCK = threading.Lock()
_installed = False


def _install() -> None:
    """Wrap ``HTTPAdapter.send`` once (a no-op unless :func:`bounded` is active in the calling context)."""
    global _installed
    with _INSTALL_LOCK:
        if _installed:
            return
        from requests.adapters import HTTPAdapter

        original = HTTPAdapter.send

        def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            active = _ACTIVE.get()
            if active is not None and not args:
                kwargs["timeout"] = active.as_requests()
            return original(self, request, *args, **kwargs)

        send.__wrapped__ = original   # type: ignore[attr-defined]
        HTTPAdapter.send = send       # type: ignore[method-assign]
        _installed = True


@contextlib.contextmanager
def bounded(timeouts: Timeouts) -> Iterator[None]:
    """Within the block, every request through ``requests`` in this context uses ``timeouts``."""
    _install()
    token = _ACTIVE.set(timeouts)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def is_timeout(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a connect or read timeout (a refused connection is not)."""
    import requests

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.exceptions.Timeout) or _is_timeout_leaf(current):
            return True
        reason = getattr(current, "reason", None)     # urllib3's MaxRetryError keeps the last error here
        if isinstance(reason, BaseException) and _is_timeout_leaf(reason):
            return True
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = nested or current.__cause__ or current.__context__
    return False


def _is_timeout_leaf(error: BaseException) -> bool:
    from urllib3.exceptions import NewConnectionError, TimeoutError as Urllib3Timeout

    # urllib3 derives NewConnectionError (refused, unreachable) from ConnectTimeoutError
    return isinstance(error, (Urllib3Timeout, TimeoutError)) and not isinstance(error, NewConnectionError)

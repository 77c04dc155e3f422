"""Faults the local Kaggle server can be told to inject, so the kit's error handling can be exercised.

A fault applies to the next ``times`` calls of one method: an API method name
(``DownloadDataFiles``, ``CreateSubmission``, ...), ``download`` (the archive GET after the
redirect), ``upload`` (the submission PUT) or ``*`` (any of them).

Example:
    >>> book = FaultBook()
    >>> book.add(Fault(method="ListSubmissions", status=429, retry_after=2, times=1))
    >>> book.take("ListSubmissions").status, book.take("ListSubmissions")
    (429, None)
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from kaggle_local.errors import ServerError

__all__ = ["Fault", "FaultBook"]


@dataclass(kw_only=True)
class Fault:
    method: str
    status: int | None = None          # answer with this HTTP status ({"code", "message"} body)
    retry_after: float | None = None   # with status: a Retry-After header, in seconds
    message: str | None = None         # with status: the error message
    delay: float = 0.0                 # seconds to wait before answering
    drop: bool = False                 # cut the connection: mid-body for download/upload, else unanswered
    drop_after: int | None = None      # with drop: bytes sent (download) or read (upload); default half
    stall: float = 0.0                 # with drop: seconds to hang after the partial body, before cutting
    after: bool = False                # API methods: carry the call out, then answer the fault (a lost reply)
    times: int = 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Fault":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown or "method" not in data:
            raise ServerError(f"a fault needs 'method' and takes {', '.join(sorted(names))}; got {', '.join(sorted(data))}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FaultBook:
    """Pending faults, consumed in the order they were added; thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.times < 1:
            raise ServerError(f"fault for {fault.method}: times must be at least 1")
        with self._lock:
            self._faults.append(dataclasses.replace(fault))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(f) for f in self._faults]

    def take(self, method: str) -> Fault | None:
        """The fault for this call of ``method``, if any (using up one of its ``times``)."""
        with self._lock:
            for fault in self._faults:
                if fault.method in (method, "*"):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return dataclasses.replace(fault)
        return None

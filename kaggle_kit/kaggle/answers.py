r"""Reading the official client's answers and errors: slugs, dates, scores, statuses, and the few
words that say why a connection failed (used by :mod:`kaggle_kit.kaggle.client`).

Example:
    >>> slug_of("https://www.kaggle.com/competitions/titanic"), one_line("a\n  b\n")
    ('titanic', 'a b')
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["slug_of", "partial_marker", "utc", "score", "one_line", "status_of", "retry_after", "server_message",
           "is_transfer_error", "short_reason", "offline_message"]


def slug_of(ref: str) -> str:
    """``https://www.kaggle.com/competitions/titanic`` (or ``titanic``) -> ``titanic``."""
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def partial_marker(archive: Path) -> Path:
    """The client's sidecar marking an unfinished download."""
    return archive.with_name(archive.name + ".kaggle-partial")


def utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def score(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def one_line(text: str | None) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return " ".join(lines)[:500]


def status_of(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    from kaggle.api.kaggle_api_extended import KaggleApi

    return KaggleApi._get_retry_after_delay(response)


def server_message(error: Exception) -> str:
    """The server's ``message`` (the client puts it in the exception), else the HTTP reason."""
    response = getattr(error, "response", None)
    text = one_line(str(error))
    if response is not None and (" for url: " in text or not text):
        return getattr(response, "reason", "") or f"HTTP {response.status_code}"
    return text


def is_transfer_error(error: Exception) -> bool:
    import requests
    import urllib3

    return isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                              requests.exceptions.Timeout, urllib3.exceptions.ProtocolError, ValueError, OSError))


def short_reason(error: Exception) -> str:
    """A few words on why a connection failed: 'connection refused', 'the connection broke off', ..."""
    text = str(error)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found[-1].strip().lower()
    if "IncompleteRead" in text or "Connection broken" in text or "RemoteDisconnected" in text:
        return "the connection broke off"
    if "does not match expected size" in text:
        return "the file arrived incomplete"
    return one_line(text)[:160] or type(error).__name__


def offline_message(error: Exception) -> str:
    """'cannot reach Kaggle' with the reason, for errors without an HTTP answer."""
    import requests

    if isinstance(error, requests.exceptions.ProxyError):
        proxy = os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy") or os.environ.get("HTTPS_PROXY") \
            or os.environ.get("https_proxy") or "the proxy"
        return f"cannot reach Kaggle through the proxy {proxy} ({short_reason(error)}); check the proxy settings"
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return f"cannot reach Kaggle ({short_reason(error)}); check the network connection"
    return f"{type(error).__name__}: {one_line(str(error))}"

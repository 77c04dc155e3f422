"""Errors the local Kaggle server raises on purpose; each message is one line naming what is wrong.

The server is independent of ``kaggle_kit``, so it has its own error types.

Example:
    >>> str(ApiError(404, "Competition 'x' not found."))
    "Competition 'x' not found."
"""
from __future__ import annotations

__all__ = ["ApiError", "ServerError", "SubmissionRejected"]


class ServerError(Exception):
    """An expected failure: a bad competition folder or setting, a malformed request."""


class SubmissionRejected(ServerError):
    """An uploaded submission that cannot be scored; the message becomes the submission's error."""


class ApiError(ServerError):
    """A call the server refuses: answered with ``status`` and ``{"code", "message"}``."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

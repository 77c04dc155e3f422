"""Masking credentials in anything the kit prints or keeps from the Kaggle client.

With ``VERBOSE=1`` the official client prints each request with its headers, so an error built
from its output can carry ``Authorization: Basic base64(user:key)``. :func:`scrub` masks every form
of a secret the kit knows of: the raw key or token, ``base64(user:key)`` (with or without
padding), the value of any ``Authorization``/``Proxy-Authorization`` header, and any ``Basic`` or
``Bearer`` credential, known or not.

Example:
    >>> import base64
    >>> basic = base64.b64encode(b"ann:s3cretkey").decode()
    >>> scrub(f"key s3cretkey; headers {{'Authorization': 'Basic {basic}'}}", user="ann", secrets=["s3cretkey"])
    "key ***; headers {'Authorization': '***'}"
    >>> scrub("Authorization: Bearer KGAT_abc123 next")
    'Authorization: *** next'
"""
from __future__ import annotations

import base64
import re
from typing import Iterable

__all__ = ["MASK", "scrub"]

MASK = "***"

_HEADER = re.compile(r"""((?:Proxy-)?Authorization['"]?\s*[:=]\s*['"]?)(?:(?:Basic|Bearer|Token)\s+)?[^\s'",;}]+""",
                     re.IGNORECASE)
_SCHEME = re.compile(r"\b(?:Basic|Bearer)\s+[A-Za-z0-9+/=._~-]{8,}")


def _forms(user: str | None, secret: str) -> list[str]:
    """The secret itself and the base64 forms of ``user:secret`` a request header carries."""
    forms = [secret]
    if user:
        encoded = base64.b64encode(f"{user}:{secret}".encode()).decode()
        forms += [encoded, encoded.rstrip("=")]
    forms.append(base64.b64encode(secret.encode()).decode().rstrip("="))
    return forms


def scrub(text: str, *, user: str | None = None, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with ``secrets`` (every form of them) and any authorisation header value masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            for form in sorted(_forms(user, secret), key=len, reverse=True):
                if len(form) >= 4:
                    text = text.replace(form, MASK)
    text = _HEADER.sub(lambda m: m.group(1) + MASK, text)
    return _SCHEME.sub(MASK, text)

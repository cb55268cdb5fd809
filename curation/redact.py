"""Credentials out of everything the project records or logs: one helper for URLs, text and settings.

A URL setting such as ``OPENAI_BASE_URL=http://user:KEY@host/v1`` carries
its credentials with it, and whatever records the setting (``report.json``,
which ``push`` uploads; the run's fingerprint; a log line; an error message)
would publish them. `redact_url` replaces a URL's user info and the values of
its secret-named query parameters (``key``, ``token``, ``sig``,
``X-Amz-Signature``...) with ``***``; `redact_text` does so for every URL in a
text and also replaces given secret strings (an API key); `redact_settings`
applies `redact_text` to every string in a settings structure.

Secrets shorter than `MIN_SECRET_CHARS` are placeholders, not credentials
(local servers accept any key, and ``x`` or ``EMPTY`` are common); replacing
them would mangle every text that contains those letters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_CHARS = 8
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_SECRET_NAME = re.compile(r"(key|token|secret|passw(or)?d|pwd|auth|signature|sig|credential)$", re.I)


def redact_url(url: str) -> str:
    """``url`` with its user info and its secret-named query values replaced by ``***``; other text unchanged."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_parameter(p) for p in parts.query.split("&")) if parts.query else ""
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing secret: not even re-serialised, so a recorded setting stays as the user wrote it
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_parameter(parameter: str) -> str:
    name, equals, _ = parameter.partition("=")
    return f"{name}={MASK}" if equals and _SECRET_NAME.search(name) else parameter


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every URL redacted (`redact_url`) and every secret of at least `MIN_SECRET_CHARS` masked."""
    text = _URL.sub(lambda m: redact_url(m.group()), text)
    for secret in sorted(real_secrets(secrets), key=len, reverse=True):  # longest first: one may contain another
        text = text.replace(secret, MASK)
    return text


def real_secrets(secrets: Iterable[str | None]) -> list[str]:
    """The ``secrets`` that are credentials rather than placeholders (at least `MIN_SECRET_CHARS` long)."""
    return [s for s in secrets if s and len(s) >= MIN_SECRET_CHARS]


def redact_settings(value: Any) -> Any:
    """``value`` (settings: dicts, lists, tuples, scalars) with `redact_text` applied to every string in it."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_settings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_settings(v) for v in value)
    return value

"""Fetcher: open an input's bytes through fsspec, and say why a read failed.

HTTP(S) inputs are read with retries: a response with a status in
`RETRY_STATUSES` (429 and the 5xx a busy or restarting server gives) is asked
again, up to `ATTEMPTS` times in all, after the server's ``Retry-After`` when it
sends one (at most `MAX_WAIT_SECONDS`) and otherwise after `BACKOFF_SECONDS`,
doubled each time. This is an ``aiohttp`` client middleware, so it covers every
request fsspec makes for the file (the size probe and each range read). What
still fails is recorded as retryable (``--retry-failed`` tries it again); a
404 or 410 is ``not_found``, never retried.

A URL input is opened once, by the decoder: planning names a URL's video by its
URL, not by its bytes, so no request is made before the work starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import fsspec

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})
ATTEMPTS = 4
BACKOFF_SECONDS = 0.5
MAX_WAIT_SECONDS = 30.0
_NETWORK_CLIENTS = frozenset({"aiohttp", "botocore", "requests", "urllib3", "httpx"})


def open_input(path: str) -> fsspec.core.OpenFile:
    """``fsspec.open(path, "rb")``, with the retry middleware for HTTP(S) URLs."""
    protocol = path.split("://", 1)[0].lower() if "://" in path else "file"
    if protocol in {"http", "https"}:
        return fsspec.open(path, "rb", client_kwargs={"middlewares": (_retry,)})
    return fsspec.open(path, "rb")


async def _retry(request: Any, handler: Any) -> Any:
    """Send ``request`` again while the answer's status is in `RETRY_STATUSES`, `ATTEMPTS` times at most."""
    wait = BACKOFF_SECONDS
    for _ in range(ATTEMPTS - 1):
        response = await handler(request)
        if response.status not in RETRY_STATUSES:
            return response
        asked = _seconds(response.headers.get("Retry-After"))
        response.release()
        await asyncio.sleep(min(asked if asked is not None else wait, MAX_WAIT_SECONDS))
        wait *= 2
    return await handler(request)


def _seconds(value: str | None) -> float | None:
    """A ``Retry-After`` given in seconds (the HTTP-date form is not used by the servers that matter here)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc`` (fsspec wraps it in a ``FileNotFoundError``), or None."""
    for cause in _chain(exc):
        status = getattr(cause, "status", None)
        if type(cause).__module__.startswith("aiohttp") and isinstance(status, int):
            return status
    return None


def is_transient(exc: BaseException | None) -> bool:
    """Whether an input's failure may go away on a retry: I/O and network errors, not bad media.

    Transient: timeouts, connection errors and other ``OSError``s raised while
    reading (a flaky disk or object store), network client errors anywhere in
    the chain of causes, and the HTTP statuses of `RETRY_STATUSES`. Not
    transient: FFmpeg's verdicts on the bytes, a file that does not exist, and
    any other HTTP status (404, 403, ...).
    """
    if exc is None:
        return False
    status = http_status(exc)
    if status is not None:
        return status in RETRY_STATUSES
    if from_network(exc):
        return True
    import av

    if isinstance(exc, av.FFmpegError | FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return False
    return isinstance(exc, TimeoutError | ConnectionError | OSError)


def from_network(exc: BaseException) -> bool:
    """Whether a network client's error (aiohttp, botocore, requests, ...) is ``exc`` or one of its causes."""
    return any(cls.__module__.split(".")[0] in _NETWORK_CLIENTS for cause in _chain(exc) for cls in type(cause).__mro__)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__

"""`OpenAICondenser`: the paper's general LLM (GPT-4) behind any OpenAI-compatible chat endpoint.

The endpoint's client is `OpenAIChat`, which the server captioner
(`curation.models.captioner_openai`) shares. It talks to OpenAI, vLLM,
SGLang or llama.cpp's server and is built for long unattended runs:

* transient failures (timeouts, connection errors, 429, 5xx) are retried with
  exponential backoff, honouring ``Retry-After``; after the last retry the
  clip gets `CondenserUnavailable` (and a `FallbackCondenser` may take over);
* a semaphore caps the requests in flight, however many threads call it
  (the captioning stage calls it from ``max_concurrency`` threads);
* a circuit breaker (`CircuitBreaker`) stops asking an endpoint that failed
  on several clips in a row: for a cool-down every clip falls back at once,
  then one trial request decides whether the endpoint is back;
* answers are cached on disk under a hash of (model, messages, sampling
  parameters), so a rerun or a resumed run does not pay twice;
* an empty or malformed answer raises `MalformedAnswer`, which the pipeline
  records on the clip (caption null + reason) as a flag for reprocessing;
  it is never cached, so the rerun asks again;
* the API key lives in one private attribute and is scrubbed from every
  message this module raises or logs (a hostile server may echo it);
  credentials inside the endpoint URL (``http://user:KEY@host/v1``) are
  taken out of the URL and sent as the HTTP Basic header they stand for, so
  no library logs or raises them, and they are scrubbed like the key;
* an answer that contains any of these secrets (an endpoint that echoes its
  request) is never returned or cached: it is a `MalformedAnswer`, so the
  clip is flagged for reprocessing and nothing written holds the secret.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from curation.models.condenser import (
    CircuitOpen,
    CondenserUnavailable,
    MalformedAnswer,
    ResponseCache,
    build_messages,
    clean_answer,
)
from curation.redact import real_secrets, redact_text, redact_url

log = logging.getLogger(__name__)


class CircuitBreaker:
    """Stops asking an endpoint that keeps failing, and asks again after a cool-down.

    Closed: every call goes through, and ``failures`` failed calls in a row
    open it. Open: calls raise `CircuitOpen` at once for ``cooldown`` seconds,
    so a down endpoint costs the run nothing but its fallback. Then half-open:
    one trial call goes through (others still raise); its success closes the
    circuit, its failure opens it for another cool-down. Opening and closing
    are logged once each, so a long outage is one warning, not one per clip.
    While open, only the trial's failure counts: calls that were already under
    way when it opened do not restart the cool-down. ``failures=0`` never
    opens. ``clock`` is injectable, so tests need no waiting.
    """

    def __init__(
        self, name: str, failures: int = 3, cooldown: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 0 or cooldown < 0:
            raise ValueError(f"circuit breaker: failures and cooldown must be >= 0, got {failures}, {cooldown}")
        self.name, self.failures, self.cooldown = name, int(failures), float(cooldown)
        self._clock = clock
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def admit(self) -> bool:
        """Let a call through (True when it is the half-open trial), or raise `CircuitOpen`."""
        with self._lock:
            if self._opened_at is None:
                return False
            waited = self._clock() - self._opened_at
            if self._trial or waited < self.cooldown:
                raise CircuitOpen(
                    f"{self.name}: circuit open after {self._in_a_row} failed clips in a row; "
                    f"next trial request in {max(0.0, self.cooldown - waited):.0f}s"
                )
            self._trial = True
            return True

    def record(self, ok: bool, trial: bool, detail: str = "") -> None:
        """The outcome of an admitted call: ``ok`` when the endpoint answered (even with a malformed answer)."""
        with self._lock:
            if trial:
                self._trial = False
            if ok:
                if self._opened_at is not None:
                    log.warning("condenser %s: the endpoint answers again; circuit closed", self.name)
                self._in_a_row, self._opened_at = 0, None
            elif self._opened_at is None:
                self._in_a_row += 1
                if self.failures and self._in_a_row >= self.failures:
                    self._opened_at = self._clock()
                    log.warning(
                        "condenser %s: %d failed clips in a row (last: %s); circuit open: clips fall back at once "
                        "for %.0fs, then one trial request",
                        self.name,
                        self._in_a_row,
                        detail,
                        self.cooldown,
                    )
            elif trial:
                self._in_a_row += 1
                self._opened_at = self._clock()
                log.debug("condenser %s: trial request failed (%s); circuit open again", self.name, detail)


def _url_credentials(url: str | None) -> tuple[str | None, dict[str, str], list[str]]:
    """``url`` without user info, the HTTP Basic header that its user info stands for, and the secrets in it.

    httpx sends a URL's user info as Basic auth and logs the URL with it, so
    the header is sent explicitly (same request) and the URL handed to the
    client carries no credential that a library could log or raise.
    """
    parts = urlsplit(url or "")
    if "@" not in parts.netloc:
        return url, {}, []
    userinfo, _, host = parts.netloc.rpartition("@")
    raw_user, _, raw_password = userinfo.partition(":")
    user, password = unquote(raw_user), unquote(raw_password)
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    secrets = [userinfo, raw_password, password, token] if password else [userinfo, user, token]
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}, secrets


class OpenAIChat:
    """One model behind an OpenAI-compatible ``/chat/completions`` endpoint: `ask` (see the module docstring).

    ``base_url`` None means ``OPENAI_BASE_URL``, else the official API, as for the OpenAI client itself.
    ``role`` names the stage in log lines (condenser, captioner).
    """

    role = "condenser"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_concurrency: int = 4,
        circuit_failures: int = 3,
        circuit_cooldown: float = 300.0,
        max_tokens: int = 160,
        temperature: float = 0.0,
        cache_dir: str | Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not model:
            raise ValueError(f"{type(self).__name__}: a model name is required")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None  # what the client would read: strip it too
        if base_url and urlsplit(base_url).query:
            raise ValueError(
                f"{type(self).__name__}: endpoint {redact_url(base_url)}: a query is not supported (the OpenAI client "
                "appends its path after it); give the key in OPENAI_API_KEY or the URL's user info"
            )
        self.model = model
        self.name = model
        self.endpoint = redact_url(base_url) if base_url else base_url
        self.base_url, self._headers, url_secrets = _url_credentials(base_url)
        self._api_key = api_key or "EMPTY"  # local servers (vLLM, llama.cpp) accept any key
        self._secrets = real_secrets([self._api_key, *url_secrets])
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_concurrency = max(1, int(max_concurrency))
        self.params = {"max_tokens": int(max_tokens), "temperature": float(temperature)}
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self.circuit = CircuitBreaker(model, circuit_failures, circuit_cooldown, clock)
        self._sleep = sleep
        self._client: Any = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, endpoint={self.endpoint!r})"

    def _redact(self, text: str) -> str:
        """``text`` with the API key and the URL's credentials replaced, for messages and logs."""
        return redact_text(text, self._secrets)

    def _leaks(self, text: str) -> bool:
        """Whether ``text`` holds a secret (the key, the URL's password or its Basic token)."""
        return any(secret in text for secret in self._secrets)

    def client(self) -> Any:
        """The ``openai.OpenAI`` client, created on first use; its own retries are off (we retry ourselves)."""
        with self._client_lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    api_key=self._api_key,
                    base_url=self.base_url,
                    default_headers=self._headers,
                    timeout=self.timeout,
                    max_retries=0,
                )
            return self._client

    def ask(self, messages: list[dict[str, Any]]) -> str:
        """The model's cleaned answer to ``messages`` (`clean_answer`): cached, retried, behind the circuit."""
        key = ResponseCache.key(self.model, messages, self.params)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None and not self._leaks(cached):
                return cached
        trial = self.circuit.admit()  # raises CircuitOpen while the endpoint is known to be down
        ok, detail = False, "interrupted"
        try:
            answer = clean_answer(self._complete(messages, retries=0 if trial else self.max_retries))
            ok = True
        except MalformedAnswer:
            ok = True  # the endpoint answered, so it is up
            raise
        except CondenserUnavailable as exc:
            detail = str(exc)
            raise
        finally:
            self.circuit.record(ok, trial, detail)
        if self._leaks(answer):
            raise MalformedAnswer("the answer contains the endpoint's credentials (it echoes its request); not used")
        if self.cache is not None:
            self.cache.put(key, self.model, answer)
        return answer

    def _complete(self, messages: list[dict[str, Any]], retries: int) -> Any:
        """One chat completion, retried ``retries`` times on transient failures; returns the content (any type)."""
        import openai

        attempt = 0
        while True:
            try:
                with self._slots:
                    response = self.client().chat.completions.create(model=self.model, messages=messages, **self.params)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error: Exception = exc
                retry_after = None
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status not in (408, 409, 429) and status < 500:
                    raise CondenserUnavailable(self._describe(exc, f"HTTP {status}, not retried")) from None
                error, retry_after = exc, _retry_after(exc)
            except openai.APIResponseValidationError as exc:
                raise MalformedAnswer(self._describe(exc, "the response is not a chat completion")) from None
            except (ValueError, TypeError) as exc:  # a body that is not JSON at all
                raise MalformedAnswer(self._describe(exc, "the response is not JSON")) from None
            else:
                return _content(response)
            if attempt >= retries:
                raise CondenserUnavailable(self._describe(error, f"gave up after {attempt + 1} attempts")) from None
            if self.circuit.is_open:  # another clip opened it meanwhile: stop paying for retries
                raise CircuitOpen(self._describe(error, "circuit opened meanwhile, not retried")) from None
            delay = min(self.max_backoff, retry_after if retry_after is not None else self._delay(attempt))
            log.warning("%s: %s; retry %d/%d in %.1fs", self.role, self._describe(error), attempt + 1, retries, delay)
            self._sleep(delay)
            attempt += 1

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter (keeps many workers from retrying in lockstep)."""
        return random.uniform(0.5, 1.0) * min(self.max_backoff, self.backoff * 2**attempt)

    def _describe(self, exc: Exception, what: str = "") -> str:
        detail = f"{type(exc).__name__}: {exc}"[:300]
        return self._redact(f"{what}: {detail}" if what else detail)


class OpenAICondenser(OpenAIChat):
    """Condenser over an OpenAI-compatible endpoint: the clip's descriptions in, one caption out."""

    def condense(self, descriptions: list[str], context: str | None, transcript: str | None) -> str:
        return self.ask(build_messages(descriptions, context, transcript))


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def _content(response: Any) -> Any:
    """The first choice's message content, or `MalformedAnswer` when the object is not a chat completion."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedAnswer(f"the response has no choices ({type(response).__name__})")
    message = getattr(choices[0], "message", None)
    return getattr(message, "content", None)

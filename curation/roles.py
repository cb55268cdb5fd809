"""One small interface per model role, and the `Analysis` an aligner returns.

A profile (see `curation.profiles`) picks one implementation per role. The
pipeline only talks to these interfaces, so the CPU profile (signal-based, no
weights) and the paper profile (Video-LLaVA, an LLM, ImageBind) write the same
schema through the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from curation.records import Clip

DECIMALS = 4
"""Decimals kept of every score, offset and map value an aligner measures, before anything decides on it.

Four decimals are finer than any of these measurements is (a correlation over a
10-s clip has a standard error of a few hundredths; an offset of 0.1 ms is a
fortieth of a frame) and far coarser than the last-bit differences between
CPUs' floating-point kernels, so the decisions and the shards' bytes are the
same on every machine (see README.md, "Shards").
"""


def round_score(value: float | None) -> float | None:
    """``value`` to `DECIMALS` decimals as a plain float; NaN, infinity or None is no value (None)."""
    return None if value is None or not math.isfinite(value) else round(float(value), DECIMALS)


@dataclass
class Score:
    """A normalised score in [0, 1] and the raw value it came from, or a reason why there is none."""

    score: float | None = None
    raw: float | None = None
    reason: str | None = None

    @classmethod
    def missing(cls, reason: str) -> Score:
        return cls(reason=reason)

    def rounded(self) -> Score:
        """The score and raw value at `DECIMALS`; a score that is not finite becomes missing."""
        score = round_score(self.score)
        reason = self.reason if score is not None or self.score is None else "score is not a finite number"
        return Score(score, round_score(self.raw), reason)


@dataclass
class Analysis:
    """What an aligner measured on one clip (Algorithm 1's filters plus task labels)."""

    language: Score
    instance: Score
    temporal_windows: list[float] | None
    """Per-1-s-window scores in [0, 1]; None with ``temporal_reason``."""
    temporal_reason: str | None
    sync_offset: float | None
    """Estimated audio delay against the video, seconds (positive: audio late)."""
    sync_confidence: float | None
    sync_reason: str | None
    heatmap: np.ndarray | None
    """Source-localization map over the frame, floats in [0, 1], any resolution; None with ``heatmap_reason``."""
    heatmap_reason: str | None
    category: tuple[str, int, float] | None = None
    """(label, id, score) of the zero-shot class, when an embedder ran."""
    category_reason: str | None = "no classifier in this profile"
    embeddings: np.ndarray | None = None
    embedding_rows: list[str] = field(default_factory=list)
    temporal_raw: list[float] | None = None
    """The windows as the aligner measured them, when ``temporal_windows`` are calibrated (`curation.calibration`);
    None when the windows are the aligner's own values."""
    box: list[float] | None = None
    """The sounding object's box ``[x0, y0, x1, y1]`` (normalised), when a model sees it (the speaking face):
    preferred over the box derived from ``heatmap``."""
    mask: np.ndarray | None = None
    """The sounding object's segmentation, floats in [0, 1] at any resolution (>= 0.5 is inside), when a model
    gives one (the person's mask): preferred over the mask derived from ``heatmap``."""
    mask_reason: str | None = None
    """Why a model that gives a ``box`` gives no ``mask`` (no person found), recorded as the mask label's reason."""
    cue: str | None = None
    """What the aligner compared on this clip, when it reads different evidence on different clips (``cues-v2``:
    ``lips`` or ``signal``): the raw values of two cues are different quantities, so a calibration maps each cue with
    its own maps (`curation.calibration`). None for an aligner with one kind of evidence."""

    @classmethod
    def missing(cls, reason: str, language_reason: str | None = None) -> Analysis:
        """Nothing measured, for one reason (``language_reason``, when given, for the language filter)."""
        return cls(
            language=Score.missing(language_reason or reason),
            instance=Score.missing(reason),
            temporal_windows=None,
            temporal_reason=reason,
            sync_offset=None,
            sync_confidence=None,
            sync_reason=reason,
            heatmap=None,
            heatmap_reason=reason,
        )

    def rounded(self) -> Analysis:
        """This analysis with every measured number at `DECIMALS` (embeddings stay as they are: they are data)."""
        category = self.category
        if category is not None:
            category = (category[0], category[1], round_score(category[2]))
        return replace(
            self,
            language=self.language.rounded(),
            instance=self.instance.rounded(),
            temporal_windows=None if self.temporal_windows is None else [round_score(w) for w in self.temporal_windows],
            temporal_raw=None if self.temporal_raw is None else [round_score(w) for w in self.temporal_raw],
            sync_offset=round_score(self.sync_offset),
            sync_confidence=round_score(self.sync_confidence),
            heatmap=None if self.heatmap is None else np.round(np.asarray(self.heatmap, dtype=np.float64), DECIMALS),
            category=category,
            box=None if self.box is None else [round_score(v) for v in self.box],
            mask=None if self.mask is None else np.round(np.asarray(self.mask, dtype=np.float64), DECIMALS),
        )


class Aligner(Protocol):
    """Scores a clip's audio against its frames (and its caption, when there is one)."""

    name: str

    def analyse(self, clip: Clip, caption: str | None) -> Analysis: ...


class Captioner(Protocol):
    """Writes sentence-level descriptions of each clip from its frames (Video-LLaVA in the paper).

    A clip's entry may be the exception met on that clip alone (a served
    captioner's failed request); an exception raised fails the whole batch.
    """

    name: str

    def describe(self, clips: list[Clip]) -> list[list[str] | Exception]: ...


class Condenser(Protocol):
    """Condenses descriptions (and manifest text, transcript) into one comprehensive caption."""

    name: str

    def condense(self, descriptions: list[str], context: str | None, transcript: str | None) -> str: ...


class Transcriber(Protocol):
    """Transcribes the speech in a clip's 16 kHz mono audio; empty string when there is none."""

    name: str

    def transcribe(self, audio: np.ndarray) -> str: ...


class LanguageScorer(Protocol):
    """Scores a caption against what the clip's own models heard and recognised (Algorithm 1's language filter).

    For profiles whose aligner has no text encoder (the cpu profile); the paper profile's ImageBind scores the
    caption itself. ``label`` is the aligner's class label (``Analysis.category``), when it gave one.
    """

    name: str

    def score(self, caption: str | None, transcript: str | None, label: str | None) -> Score: ...

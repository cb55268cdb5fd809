"""Alignment filtering (Algorithm 1, lines 10-27).

Each filter compares a normalised score with its threshold (0.5 by default).
A clip that fails instance or temporal alignment is re-aligned first, as the
algorithm says: its audio is shifted by the estimated sync offset and scored
again, and the better of the two is kept. Only then is the clip flagged.

A filter whose score could not be computed passes no judgement (``passed`` is
null), with one exception: instance alignment is the dataset's core criterion,
so a clip whose audio-visual correspondence cannot be measured at all is
flagged ``instance``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.config import CurationConfig
from curation.records import Clip
from curation.roles import Aligner, Analysis, Score, round_score


@dataclass
class Decision:
    clip: Clip
    """The clip as it will be written: with its audio shifted when it was re-aligned."""
    analysis: Analysis
    offset: float | None
    """The audio delay estimated on the clip as decoded."""
    confidence: float | None
    offset_reason: str | None
    realigned: bool


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale; -inf for digital silence."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else -np.inf


def shift_audio(clip: Clip, offset: float) -> Clip:
    """The clip with its audio moved ``offset`` seconds earlier (undoing a delay of ``offset``), zero-padded."""
    shift = int(round(offset * AUDIO_SAMPLE_RATE))
    audio = np.zeros_like(clip.audio)
    if shift >= 0:
        audio[: len(audio) - shift] = clip.audio[shift:]
    else:
        audio[-shift:] = clip.audio[: len(audio) + shift]
    return replace(clip, audio=audio)


def _failing(analysis: Analysis, config: CurationConfig) -> bool:
    instance = analysis.instance.score
    temporal = _mean(analysis.temporal_windows)
    return (instance is not None and instance < config.instance_threshold) or (
        temporal is not None and temporal < config.temporal_threshold
    )


def realign(clip: Clip, analysis: Analysis, caption: str | None, aligner: Aligner, config: CurationConfig) -> Decision:
    """Re-align a clip that fails instance or temporal alignment, when an offset was estimated with confidence.

    An unconfident offset (a single sound matching any burst of motion) would
    only move good audio to a wrong place, so it is recorded but not applied.
    """
    decision = Decision(
        clip, analysis, analysis.sync_offset, analysis.sync_confidence, analysis.sync_reason, realigned=False
    )
    offset, confidence = analysis.sync_offset, analysis.sync_confidence or 0.0
    if (
        not _failing(analysis, config)
        or offset is None
        or abs(offset) < 0.5 / clip.fps
        or confidence < config.realign_min_confidence
    ):
        return decision
    shifted = shift_audio(clip, offset)
    second = aligner.analyse(shifted, caption)
    if (second.instance.score or 0.0) > (analysis.instance.score or 0.0):
        decision.clip, decision.analysis, decision.realigned = shifted, second, True
    return decision


def alignment_metadata(decision: Decision, config: CurationConfig) -> dict[str, Any]:
    """The ``alignment`` struct of the schema."""
    analysis = decision.analysis
    windows = None if analysis.temporal_windows is None else [round_score(w) for w in analysis.temporal_windows]
    temporal = Score(_mean(windows), _mean(windows), analysis.temporal_reason if windows is None else None)
    filters = {
        "language": _filter(analysis.language, config.language_threshold),
        "instance": _filter(analysis.instance, config.instance_threshold),
        "temporal": {**_filter(temporal, config.temporal_threshold), "windows": windows},
    }
    filters["temporal"]["raw"] = None  # the windows are the raw values
    flags = [name for name, f in filters.items() if f["passed"] is False]
    if filters["instance"]["score"] is None:
        flags.append("instance")
    return {
        **filters,
        "sync": {
            "offset": round_score(decision.offset),
            "confidence": round_score(decision.confidence),
            "realigned": decision.realigned,
            "reason": None if round_score(decision.offset) is not None else (decision.offset_reason or "not estimated"),
        },
        "flags": sorted(set(flags)),
        "passed": not flags,
    }


def _filter(score: Score, threshold: float) -> dict[str, Any]:
    value = round_score(score.score)
    return {
        "score": value,
        "raw": round_score(score.raw),
        "threshold": threshold,
        "passed": None if value is None else value >= threshold,
        "reason": None if value is not None else (score.reason or "not computed"),
    }


def _mean(values: list[float] | None) -> float | None:
    return float(np.mean(values)) if values else None

"""The filters' decisions (Algorithm 1, lines 10-27): silence, re-alignment, pass or flag, keep or reject.

Each filter compares a normalised score with its threshold (0.5 by default).
A clip that fails instance or temporal alignment is re-aligned first, as the
algorithm says: its audio is shifted by the estimated sync offset and scored
again (`curation.analyse`), and the better of the two is kept. Only then is the
clip flagged.

A filter whose score could not be computed passes no judgement (``passed`` is
null), with one exception: instance alignment is the dataset's core criterion,
so a clip whose audio-visual correspondence cannot be measured at all is
flagged ``instance``.

This module only decides; the model stages that produce the scores are in
`curation.analyse`, and the schema's ``alignment`` struct is built by
`curation.sample`.
"""

from __future__ import annotations

import numpy as np

from curation.config import CurationConfig
from curation.records import Clip
from curation.roles import Analysis


def is_silent(clip: Clip, config: CurationConfig) -> bool:
    """Whether the clip's audio is below ``config.silence_dbfs`` (rejected ``silent_audio`` before any model runs)."""
    return _rms_dbfs(clip.audio) < config.silence_dbfs


def _rms_dbfs(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale; -inf for digital silence."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else -np.inf


def needs_realignment(clip: Clip, analysis: Analysis, config: CurationConfig) -> bool:
    """Whether a clip fails instance or temporal alignment and has an offset estimated with confidence.

    An unconfident offset (a single sound matching any burst of motion) would
    only move good audio to a wrong place, so it is recorded but not applied;
    so is an offset under half a frame.
    """
    offset, confidence = analysis.sync_offset, analysis.sync_confidence or 0.0
    return not (
        not _failing(analysis, config)
        or offset is None
        or abs(offset) < 0.5 / clip.fps
        or confidence < config.realign_min_confidence
    )


def realignment_helps(first: Analysis, second: Analysis) -> bool:
    """Whether the shifted clip's analysis (``second``) is kept: its instance alignment is higher."""
    return (second.instance.score or 0.0) > (first.instance.score or 0.0)


def _failing(analysis: Analysis, config: CurationConfig) -> bool:
    instance = analysis.instance.score
    temporal = window_mean(analysis.temporal_windows)
    return (instance is not None and instance < config.instance_threshold) or (
        temporal is not None and temporal < config.temporal_threshold
    )


def passes(score: float | None, threshold: float) -> bool | None:
    """One filter's verdict on a score; None (no judgement) when the score could not be computed."""
    return None if score is None else score >= threshold


def flags(verdicts: dict[str, bool | None], instance_measured: bool) -> list[str]:
    """The filters a clip fails, sorted; a clip whose instance alignment could not be measured is flagged ``instance``."""
    failed = [name for name, passed in verdicts.items() if passed is False]
    if not instance_measured:
        failed.append("instance")
    return sorted(set(failed))


def keeps(passed: bool, config: CurationConfig) -> bool:
    """Whether a clip is written: it passed every filter, or flagged clips are kept (``config.keep_flagged``)."""
    return passed or config.keep_flagged


def window_mean(values: list[float] | None) -> float | None:
    """The temporal score: the mean of the per-window scores, None when there are none."""
    return float(np.mean(values)) if values else None

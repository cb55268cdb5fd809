"""The model stages on a batch of audible clips: caption, align, and re-align the clips that fail.

`run_model_stages` is the one function that computes them, whichever engine
runs it: in the unit's own process (`LocalModelStages`), or in a GPU actor
that serves batches sent by CPU tasks (`curation.engines.ray`). A model that
raises on a clip never stops the run: the clip goes on with null values and a
`ModelFailure` (counted as retryable).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from acav1m_hf import strict_json
from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.calibration import Calibration, calibrate, calibration_for
from curation.captioning import CaptionResult, caption_batch
from curation.config import CurationConfig
from curation.filters import needs_realignment, realignment_helps
from curation.profiles import Profile, build_profile
from curation.records import Clip, ModelFailure
from curation.roles import Analysis, LanguageScorer, Score

log = logging.getLogger(__name__)

ProfileFactory = Callable[[CurationConfig], Profile]

_PROFILES: dict[tuple[str, str], Profile] = {}


def load_profile(config: CurationConfig, factory: ProfileFactory | None = None) -> Profile:
    """One profile per process, config and factory: models load once per worker, not once per unit."""
    factory = factory or build_profile
    key = (
        f"{factory.__module__}.{factory.__qualname__}",
        strict_json.dumps(config.to_dict(), sort_keys=True, default=str),
    )
    if key not in _PROFILES:
        _PROFILES[key] = factory(config)
    return _PROFILES[key]


def one_blas_thread() -> AbstractContextManager[Any]:
    """Limit BLAS/OpenMP pools to one thread while a stage computes, in every engine.

    BLAS results depend on the thread count in their last bits. The cpu
    aligner no longer uses BLAS, but the paper profile's models do when they
    run on CPU, and without this the same unit could give other bytes on a
    machine with more cores, or under Ray (which runs tasks with one thread).
    Parallelism comes from units, one per core, instead.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency; without it, shards may vary by core count
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(1)


@dataclass
class Decision:
    """A clip after alignment and re-alignment: what `curation.sample` writes."""

    clip: Clip
    """The clip as it will be written: with its audio shifted when it was re-aligned."""
    analysis: Analysis
    offset: float | None
    """The audio delay estimated on the clip as decoded."""
    confidence: float | None
    offset_reason: str | None
    realigned: bool
    first: Analysis | None = None
    """The analysis of the clip as decoded, before any re-alignment (what a calibration is fitted on)."""


@dataclass
class ModelResult:
    """What the model stages made of one audible clip."""

    decision: Decision
    caption: CaptionResult
    failure: ModelFailure | None = None
    """The first model-stage failure on this clip (recorded on the clip as null + reason), if any."""


class ModelStages(Protocol):
    """Runs the model stages on a batch of clips, wherever the models live.

    ``profile`` is what `curation.sample.build_sample` records (``name``,
    ``models()``). Either way the same `run_model_stages` computes.
    """

    profile: Any

    def run(self, clips: list[Clip]) -> list[ModelResult]: ...


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[: 300 - len("aligner failed: ")]


def _failed(exc: Exception) -> tuple[Analysis, ModelFailure]:
    failure = ModelFailure("aligner", _short(exc))
    return Analysis.missing(failure.reason), failure


def guarded_analyses(
    aligner: Any, clips: list[Clip], captions: list[str | None], calibration: Calibration | None = None
) -> list[tuple[Analysis, ModelFailure | None]]:
    """Each clip's analysis, rounded and calibrated, with the aligner's failure on it (the clip goes on, null scores).

    An aligner with ``analyse_batch`` (the paper profile's ImageBind) sees
    the clips in one batch; if the batch raises, the clips are analysed one
    at a time, so that only the clip that fails gets null scores. The
    numbers are rounded to `curation.roles.DECIMALS` and calibrated
    (`curation.calibration.calibrate`) here, once for every profile, so that
    re-alignment, the filters and the shards all see the same
    machine-independent values, on the same scale.
    """
    batch = getattr(aligner, "analyse_batch", None)
    if batch is not None and len(clips) > 1:
        try:
            return [(calibrate(analysis.rounded(), calibration), None) for analysis in batch(clips, captions)]
        except Exception as exc:  # noqa: BLE001 - found again below, on its own clip
            log.warning(
                "aligner: a batch of %d clips failed (%s); analysing them one at a time", len(clips), _short(exc)
            )
    out: list[tuple[Analysis, ModelFailure | None]] = []
    for clip, caption in zip(clips, captions, strict=True):
        try:
            out.append((calibrate(aligner.analyse(clip, caption).rounded(), calibration), None))
        except Exception as exc:  # noqa: BLE001 - one clip's failure stays with that clip
            out.append(_failed(exc))
    return out


def shift_audio(clip: Clip, offset: float) -> Clip:
    """The clip with its audio moved ``offset`` seconds earlier (undoing a delay of ``offset``), zero-padded."""
    shift = int(round(offset * AUDIO_SAMPLE_RATE))
    audio = np.zeros_like(clip.audio)
    if shift >= 0:
        audio[: len(audio) - shift] = clip.audio[shift:]
    else:
        audio[-shift:] = clip.audio[: len(audio) + shift]
    return replace(clip, audio=audio)


def realign_all(
    clips: list[Clip],
    first: list[tuple[Analysis, ModelFailure | None]],
    captions: list[str | None],
    aligner: Any,
    config: CurationConfig,
    calibration: Calibration | None = None,
) -> list[tuple[Decision, ModelFailure | None]]:
    """Re-align, in one batch, the clips whose filters call for it (audio shifted by its offset); keep the better."""
    decisions = [
        (Decision(c, a, a.sync_offset, a.sync_confidence, a.sync_reason, False, first=a), failure)
        for c, (a, failure) in zip(clips, first, strict=True)
    ]
    again = [i for i, (c, (a, _)) in enumerate(zip(clips, first, strict=True)) if needs_realignment(c, a, config)]
    shifted = [shift_audio(clips[i], first[i][0].sync_offset) for i in again]  # type: ignore[arg-type] - set then
    second = guarded_analyses(aligner, shifted, [captions[i] for i in again], calibration)
    for i, clip, (analysis, failure) in zip(again, shifted, second, strict=True):
        decision = decisions[i][0]
        if realignment_helps(decision.analysis, analysis):
            decision.clip, decision.analysis, decision.realigned = clip, analysis, True
        decisions[i] = (decision, decisions[i][1] or failure)
    return decisions


def run_model_stages(clips: list[Clip], profile: Profile, config: CurationConfig) -> list[ModelResult]:
    """Caption, align and re-align audible clips, a batch at a time; a model failure is recorded on its clip.

    A profile with a language scorer (the cpu profile) scores the caption after alignment, against the
    transcript and the class label of the analysis kept (`score_language`).
    """
    captions = caption_batch(clips, profile)
    texts = [caption.text for caption in captions]
    calibration = calibration_for(profile.aligner.name, config)
    first = guarded_analyses(profile.aligner, clips, texts, calibration)
    decisions = realign_all(clips, first, texts, profile.aligner, config, calibration)
    out = []
    for caption, (decision, failure) in zip(captions, decisions, strict=True):
        if profile.language is not None:
            language, language_failure = score_language(profile.language, caption, decision.analysis)
            decision.analysis = replace(decision.analysis, language=language)
            failure = failure or language_failure
        out.append(ModelResult(decision, caption, caption.failure or failure))
    return out


def score_language(
    scorer: LanguageScorer, caption: CaptionResult, analysis: Analysis
) -> tuple[Score, ModelFailure | None]:
    """The language score of the clip's caption (rounded), or a missing score with the failure when it raised."""
    label = analysis.category[0] if analysis.category else None
    try:
        return scorer.score(caption.text, caption.transcript, label).rounded(), None
    except Exception as exc:  # noqa: BLE001 - one clip's failure stays with that clip
        failure = ModelFailure("language", f"{type(exc).__name__}: {exc}"[:280])
        return Score.missing(failure.reason), failure


class LocalModelStages:
    """Model stages in this process."""

    def __init__(self, profile: Profile, config: CurationConfig) -> None:
        self.profile, self.config = profile, config

    def run(self, clips: list[Clip]) -> list[ModelResult]:
        return run_model_stages(clips, self.profile, self.config)

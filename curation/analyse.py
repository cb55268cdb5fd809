"""The model stages on a batch of audible clips: caption, align, and re-align the clips that fail.

`run_model_stages` is the one function that computes them, whichever engine
runs it: in the unit's own process (`LocalModelStages`), or in a GPU actor
that serves batches sent by CPU tasks (`curation.engines.ray`). A model that
raises on a clip never stops the run: the clip goes on with null values and a
`ModelFailure` (counted as retryable).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from acav1m_hf import strict_json
from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.captioning import CaptionResult, caption_batch
from curation.config import CurationConfig
from curation.filters import needs_realignment, realignment_helps
from curation.profiles import Profile, build_profile
from curation.records import Clip, ModelFailure
from curation.roles import Analysis, LanguageScorer, Score

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


class _GuardedAligner:
    """An aligner whose failure on a clip becomes null scores with the error as reason (the clip goes on).

    Its numbers are rounded to `curation.roles.DECIMALS` here, once for every
    profile, so that re-alignment, the filters and the shards all see the same
    machine-independent values.
    """

    def __init__(self, aligner: Any) -> None:
        self.inner = aligner
        self.name = aligner.name
        self.failures: list[ModelFailure] = []

    def analyse(self, clip: Clip, caption: str | None) -> Analysis:
        """The inner aligner's analysis, rounded (`Analysis.rounded`) before any filter decides on it."""
        try:
            return self.inner.analyse(clip, caption).rounded()
        except Exception as exc:  # noqa: BLE001 - one clip's failure stays with that clip
            failure = ModelFailure("aligner", f"{type(exc).__name__}: {exc}"[: 300 - len("aligner failed: ")])
            self.failures.append(failure)
            return Analysis.missing(failure.reason)


def shift_audio(clip: Clip, offset: float) -> Clip:
    """The clip with its audio moved ``offset`` seconds earlier (undoing a delay of ``offset``), zero-padded."""
    shift = int(round(offset * AUDIO_SAMPLE_RATE))
    audio = np.zeros_like(clip.audio)
    if shift >= 0:
        audio[: len(audio) - shift] = clip.audio[shift:]
    else:
        audio[-shift:] = clip.audio[: len(audio) + shift]
    return replace(clip, audio=audio)


def realign(clip: Clip, analysis: Analysis, caption: str | None, aligner: Any, config: CurationConfig) -> Decision:
    """Align the clip's audio shifted by its estimated offset when the filters call for it; keep the better."""
    decision = Decision(
        clip, analysis, analysis.sync_offset, analysis.sync_confidence, analysis.sync_reason, realigned=False
    )
    if not needs_realignment(clip, analysis, config):
        return decision
    shifted = shift_audio(clip, analysis.sync_offset)  # type: ignore[arg-type] - set when re-alignment is needed
    second = aligner.analyse(shifted, caption)
    if realignment_helps(analysis, second):
        decision.clip, decision.analysis, decision.realigned = shifted, second, True
    return decision


def run_model_stages(clips: list[Clip], profile: Profile, config: CurationConfig) -> list[ModelResult]:
    """Caption, align and re-align audible clips; a model failure is recorded on its clip, never raised.

    A profile with a language scorer (the cpu profile) scores the caption after alignment, against the
    transcript and the class label of the analysis kept (`score_language`).
    """
    out = []
    for clip, caption in zip(clips, caption_batch(clips, profile), strict=True):
        aligner = _GuardedAligner(profile.aligner)
        analysis = aligner.analyse(clip, caption.text)
        decision = realign(clip, analysis, caption.text, aligner, config)
        failures = [caption.failure] if caption.failure else []
        if profile.language is not None:
            language, failure = score_language(profile.language, caption, decision.analysis)
            decision.analysis = replace(decision.analysis, language=language)
            failures += [failure] if failure else []
        out.append(ModelResult(decision, caption, (failures + aligner.failures or [None])[0]))
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

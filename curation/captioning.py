"""Captioning stage (Algorithm 1, lines 6-8): descriptions → one comprehensive caption.

With no captioner in the profile but a condenser (the cpu profile), the
caption is condensed from the manifest's ``text`` and the transcript, and its
``origin`` names the condenser and what it read (``SmolLM2-... (manifest text +
transcript)``); with neither text nor speech it is null with the reason. With
no captioner and no condenser, the manifest's ``text`` is the caption as is.
Model failures are recorded on the clip (null + reason) and flag it for
reprocessing; they never stop a run.
A captioner that raises fails its batch; one that reports a failure per clip
(a served VLM: `curation.models.captioner_openai`) fails that clip only.

The clips of a batch are condensed concurrently, in as many threads as the
condenser declares it serves at once (``max_concurrency``, e.g. the paper
profile's ``condenser_concurrency``; 1 when it declares nothing), so an LLM
endpoint's latency overlaps across clips. Results keep the clips' order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from curation.profiles import Profile
from curation.records import Clip, ModelFailure
from curation.redact import redact_text

NOTHING_TO_CONDENSE = "no manifest text and no speech heard, and no captioner in this profile"


@dataclass
class CaptionResult:
    text: str | None
    origin: str | None
    reason: str | None = None
    descriptions: list[str] = field(default_factory=list)
    transcript: str | None = None
    failure: ModelFailure | None = None
    """Set when the captioner or the condenser raised (``reason`` is then its reason)."""


def caption_batch(clips: list[Clip], profile: Profile) -> list[CaptionResult]:
    """Caption a batch of clips (batched so that a GPU captioner sees several clips at once)."""
    if profile.captioner is None and profile.condenser is None:
        return [_from_manifest(clip) for clip in clips]
    try:
        descriptions = profile.captioner.describe(clips) if profile.captioner else [[] for _ in clips]
    except Exception as exc:  # noqa: BLE001 - recorded on every clip of the batch
        return [_failed(ModelFailure("captioner", _short(exc))) for _ in clips]
    transcripts = [
        _transcribe(clip, profile) for clip in clips
    ]  # in this thread: a transcriber need not be thread-safe
    jobs = list(zip(clips, descriptions, transcripts, strict=True))
    workers = min(len(jobs), getattr(profile.condenser, "max_concurrency", 1))
    if workers <= 1:
        return [_condense(*job, profile) for job in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="condenser") as pool:
        return list(pool.map(lambda job: _condense(*job, profile), jobs))


def _from_manifest(clip: Clip) -> CaptionResult:
    if clip.item.text:
        return CaptionResult(clip.item.text, "manifest")
    return CaptionResult(None, None, reason="no manifest text and no captioner in this profile")


def _transcribe(clip: Clip, profile: Profile) -> str | None:
    if profile.transcriber is None:
        return None
    try:
        return profile.transcriber.transcribe(clip.audio) or None
    except Exception:  # noqa: BLE001 - optional context: the caption is still condensed without it
        return None


def _condense(
    clip: Clip, descriptions: list[str] | Exception, transcript: str | None, profile: Profile
) -> CaptionResult:
    """One clip's caption; runs in a worker thread, and reads ``condenser.name`` there (it names who answered).

    ``descriptions`` is the exception the captioner met on this clip alone, when it reports failures per clip.
    """
    if isinstance(descriptions, Exception):
        return _failed(ModelFailure("captioner", _short(descriptions)), None, transcript)
    if profile.captioner is None:
        return _condense_text(clip, transcript, profile)
    if profile.condenser is None:
        text = " ".join(descriptions).strip() or None
        reason = None if text else "the captioner returned no description"
        return CaptionResult(text, profile.captioner.name if text else None, reason, descriptions, transcript)
    try:
        text = profile.condenser.condense(descriptions, clip.item.text, transcript)
    except Exception as exc:  # noqa: BLE001 - flagged for reprocessing, the clip goes on
        return _failed(ModelFailure("condenser", _short(exc)), descriptions, transcript)
    origin = f"{profile.captioner.name} + {profile.condenser.name}"
    return CaptionResult(text, origin, None, descriptions, transcript)


def _condense_text(clip: Clip, transcript: str | None, profile: Profile) -> CaptionResult:
    """No captioner: the condenser rewrites the manifest text and the transcript into the caption."""
    read = [name for name, text in (("manifest text", clip.item.text), ("transcript", transcript)) if text]
    if not read:
        return CaptionResult(None, None, NOTHING_TO_CONDENSE, [], transcript)
    try:
        text = profile.condenser.condense([], clip.item.text, transcript)  # type: ignore[union-attr] - checked
    except Exception as exc:  # noqa: BLE001 - flagged for reprocessing, the clip goes on
        return _failed(ModelFailure("condenser", _short(exc)), [], transcript)
    return CaptionResult(text, f"{profile.condenser.name} ({' + '.join(read)})", None, [], transcript)  # type: ignore[union-attr]


def _failed(
    failure: ModelFailure, descriptions: list[str] | None = None, transcript: str | None = None
) -> CaptionResult:
    return CaptionResult(None, None, failure.reason, descriptions or [], transcript, failure)


def _short(exc: Exception) -> str:
    """The reason recorded on the clip (and so published): any credentials inside a URL in it redacted."""
    return redact_text(f"{type(exc).__name__}: {exc}")[:300]

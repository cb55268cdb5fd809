"""The cpu profile's text side on real clips: captions condensed by SmolLM2 from the manifest text and Whisper's
transcript, and MiniLM's language score, calibrated so that 0.5 means chance."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLE_DATA, SPEECH_CLIP, missing_dependency, needs

needs("faster_whisper", "llama_cpp", "sentence_transformers")

from curation.analyse import ModelResult, one_blas_thread, run_model_stages  # noqa: E402
from curation.captioning import NOTHING_TO_CONDENSE  # noqa: E402
from curation.config import CurationConfig  # noqa: E402
from curation.decode import decode_clips  # noqa: E402
from curation.models.condenser_offline import ExtractiveCondenser  # noqa: E402
from curation.models.language import (  # noqa: E402
    NO_CAPTION,
    NO_EVIDENCE,
    evidence_sentence,
    load_reference_utterances,
    share_beaten,
)
from curation.profiles import Profile, build_profile  # noqa: E402
from curation.records import InputItem  # noqa: E402

CONFIG = CurationConfig(clip_seconds=5.0)
WEBCAM = "A person at a webcam talks over a screen recording."


@pytest.fixture(scope="module")
def profile() -> Iterator[Profile]:
    try:
        built = build_profile(CONFIG)
    except (FileNotFoundError, ValueError) as exc:
        missing_dependency(str(exc))
    if built.transcriber is None or built.language is None or not built.condenser.name.startswith("SmolLM2"):
        missing_dependency(f"the cpu profile's wheel-shipped models are not all installed: {built.models()}")
    with one_blas_thread():  # as every engine runs the model stages
        yield built


def _run(profile: Profile, path: Path, text: str | None) -> ModelResult:
    (clip,) = list(decode_clips(InputItem(str(path), path.stem, text=text), CONFIG))
    (result,) = run_model_stages([clip], profile, CONFIG)
    return result


@pytest.fixture(scope="module")
def webcam(profile: Profile) -> ModelResult:
    """The speech clip with a manifest text."""
    return _run(profile, SPEECH_CLIP, WEBCAM)


@pytest.fixture(scope="module")
def spoken(profile: Profile) -> ModelResult:
    """The speech clip without one."""
    return _run(profile, SPEECH_CLIP, None)


def test_caption_condensed_from_the_manifest_text_and_the_transcript(profile: Profile, webcam: ModelResult) -> None:
    result = webcam
    caption = result.caption
    assert "directory" in caption.transcript.lower(), caption  # Whisper hears "I will show a directory."
    assert caption.origin == f"{profile.condenser.name} (manifest text + transcript)", caption
    assert caption.text and caption.text != WEBCAM and caption.reason is None and result.failure is None
    language = result.decision.analysis.language
    assert 0.0 <= language.score <= 1.0 and language.raw is not None and language.reason is None, language


def test_caption_from_speech_alone_and_none_without_text_or_speech(profile: Profile, spoken: ModelResult) -> None:
    caption = spoken.caption
    assert caption.origin == f"{profile.condenser.name} (transcript)"
    assert "directory" in caption.text.lower(), caption  # SmolLM2 says what was said, having nothing else
    silent = _run(profile, SAMPLE_DATA / "techslides_small.mp4", None)  # mechanical sound, no words
    assert (silent.caption.text, silent.caption.origin, silent.caption.reason) == (None, None, NOTHING_TO_CONDENSE)
    assert silent.caption.transcript is None and silent.failure is None
    assert silent.decision.analysis.language.score is None
    assert silent.decision.analysis.language.reason == NO_CAPTION


def test_own_evidence_scores_above_mismatched(profile: Profile, spoken: ModelResult) -> None:
    """The clip's caption against its own transcript, and against another real clip's caption (a swap)."""
    scorer = profile.language
    own = spoken.caption
    with open(SAMPLE_DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        bunny = next(row["text"] for row in csv.DictReader(f) if row["video_id"] == "bbb_excerpt")
    matched = scorer.score(own.text, own.transcript, None)
    swapped = scorer.score(bunny, own.transcript, None)
    assert 0.5 < matched.score <= 1.0 and 0.0 <= swapped.score < matched.score, (matched, swapped)
    assert matched.raw > swapped.raw
    assert round(matched.score * len(scorer.utterances)) == matched.score * len(scorer.utterances)  # a share of 50


def test_half_is_chance_by_construction(profile: Profile, webcam: ModelResult) -> None:
    """Any caption, scored against each reference utterance as if it were the clip's own speech: mean 0.5.

    Each reference then competes with the others only, so over the set every pairwise win is someone's loss
    (ties count half): the scores average 0.5 exactly, up to the 4-decimal rounding of each (5e-5 at most).
    """
    scorer = profile.language
    caption = webcam.caption.text
    utterances = load_reference_utterances()
    scores = [scorer.score(caption, u, None).score for u in utterances]
    assert len(set(scores)) > 10 and min(scores) < 0.2 and max(scores) > 0.8  # a real spread, not a constant
    assert abs(float(np.mean(scores)) - 0.5) <= 5e-5


def test_missing_scores_say_why(profile: Profile) -> None:
    scorer = profile.language
    assert scorer.score(None, "hello", "Speech").reason == NO_CAPTION
    assert scorer.score("A dog barks.", " ", None).reason == NO_EVIDENCE
    assert evidence_sentence("I will  show\na directory.", "Speech") == (
        'The sound of speech. Someone says: "I will show a directory."'
    )


def test_share_beaten_counts_ties_half() -> None:
    assert share_beaten(0.3, [0.1, 0.3, 0.5, 0.2]) == 0.625
    assert share_beaten(0.3, []) == 0.5
    with pytest.raises(ValueError, match="transcript"):
        load_reference_utterances(SAMPLE_DATA / "manifest.csv")


def test_extractive_fallback_captions_speech_alone() -> None:
    assert ExtractiveCondenser().condense([], None, "I will show a directory.") == (
        'Speech: "I will show a directory."'
    )

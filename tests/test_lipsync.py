"""The lip path's numbers on series with a known lag: the instance score accepts a voice late by up to
``ACCEPTED_AUDIO_LAG``, not early, and the offset search still reports the lag itself."""

from __future__ import annotations

import numpy as np
import pytest

from curation import lipsync

FPS = 25.0
FRAMES = 250


def lips_and_voice(audio_late: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A mouth series with syllable-rate changes, and an envelope that follows it ``audio_late`` frames later, with
    a little noise of its own."""
    rng = np.random.default_rng(seed)
    source = np.convolve(rng.standard_normal(FRAMES + 40), np.hanning(7), "same")
    mouth = source[20 : 20 + FRAMES]
    envelope = source[20 - audio_late : 20 - audio_late + FRAMES] + 0.1 * rng.standard_normal(FRAMES)
    return envelope, mouth


def test_accepted_lags_are_whole_frames_within_the_accepted_audio_lag() -> None:
    assert lipsync.ACCEPTED_AUDIO_LAG == pytest.approx(0.185)
    assert [lipsync.accepted_lags(fps) for fps in (25.0, 12.0, 15.0, 30.0)] == [4, 2, 2, 5]


@pytest.mark.parametrize("audio_late", [0, 2, 4])
def test_a_voice_late_within_the_accepted_lag_scores_as_a_voice_in_sync(audio_late: int) -> None:
    envelope, mouth = lips_and_voice(audio_late)
    sync = lipsync.lip_sync(envelope, mouth, FPS, max_offset=1.0, min_overlap=2.0)
    in_sync = lipsync.lip_sync(*lips_and_voice(0), FPS, max_offset=1.0, min_overlap=2.0)
    assert sync.instance_lag == audio_late
    assert sync.raw == pytest.approx(in_sync.raw, abs=0.02) and sync.raw > 0.9
    assert sync.offset == pytest.approx(audio_late / FPS, abs=0.5 / FPS)
    assert lipsync.instance_score(sync) > 0.8


@pytest.mark.parametrize("audio_late", [-4, 9])
def test_a_voice_early_or_later_than_accepted_scores_lower_and_its_offset_is_still_found(audio_late: int) -> None:
    envelope, mouth = lips_and_voice(audio_late)
    sync = lipsync.lip_sync(envelope, mouth, FPS, max_offset=1.0, min_overlap=2.0)
    assert sync.raw < 0.6, sync
    assert sync.offset == pytest.approx(audio_late / FPS, abs=0.5 / FPS)


def test_the_windows_are_read_at_the_instance_lag() -> None:
    envelope, mouth = lips_and_voice(4)
    spoken = np.ones(FRAMES, dtype=bool)
    at_lag = lipsync.windows(envelope, mouth, FPS, FRAMES / FPS, spoken, 0.0, lag=4)
    at_zero = lipsync.windows(envelope, mouth, FPS, FRAMES / FPS, spoken, 0.0)
    assert len(at_lag) == 10 and min(at_lag) > 0.8
    assert np.mean(at_zero) < np.mean(at_lag) - 0.3


def test_the_chance_level_is_the_same_best_of_the_accepted_lags_at_impossible_shifts() -> None:
    envelope, mouth = lips_and_voice(0)
    sync = lipsync.lip_sync(envelope, mouth, FPS, max_offset=1.0, min_overlap=2.0)
    null = lipsync.circular(envelope, mouth)[26:225]  # shifts beyond the +-1-s search
    best_of_five = [null[k : k + 5].max() for k in range(len(null) - 4)]
    assert sync.chance == pytest.approx(float(np.median(best_of_five)))
    assert sync.chance > float(np.median(null))


def test_the_last_window_is_not_short_of_pairs_for_the_frames_the_lag_leaves_without_audio() -> None:
    envelope, mouth = lips_and_voice(4)
    envelope, mouth = envelope[:65], mouth[:65]  # 2.6 s: the last window, 2.0-2.6 s, has 15 frames, 4 past the audio
    spoken = np.ones(65, dtype=bool)
    scores = lipsync.windows(envelope, mouth, FPS, 2.6, spoken, 0.0, lag=4)
    assert len(scores) == 3 and min(scores) > 0.8, scores


def test_the_windows_hear_the_speech_the_lips_shape() -> None:
    envelope, mouth = lips_and_voice(4)
    spoken = np.zeros(FRAMES, dtype=bool)
    spoken[4:29] = True  # speech heard 0-1 s, 4 frames after the lips that shape it
    scores = lipsync.windows(envelope, mouth, FPS, FRAMES / FPS, spoken, 0.25, lag=4)
    assert scores[0] > 0.8 and scores[1:] == [0.25] * 9, scores
    with pytest.raises(ValueError, match="lag must be 0 or more"):
        lipsync.windows(envelope, mouth, FPS, FRAMES / FPS, spoken, 0.25, lag=-1)


def test_a_short_clips_chance_level_is_the_best_of_its_few_impossible_shifts() -> None:
    envelope, mouth = lips_and_voice(0)
    envelope, mouth = envelope[:54], mouth[:54]  # 2.16 s: 3 shifts beyond the +-1-s search, fewer than 5 lags
    sync = lipsync.lip_sync(envelope, mouth, FPS, max_offset=1.0, min_overlap=1.0)
    assert sync.chance == pytest.approx(float(np.nanmax(lipsync.circular(envelope, mouth)[26:29])))

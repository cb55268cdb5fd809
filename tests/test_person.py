"""The cpu profile's person models (`curation.models.person`) on real clips, and their motion maths on known truth.

The mask: `forensics_hello_excerpt.mp4` shows its person in a webcam inset at
the upper left; the inset's box was measured on the decoded frames (384 x 216):
columns 34-109, rows 24-81, where the mean frame turns from the slide's bright
background to the webcam picture (a step of 50 to 150 gray levels). Clips with
no person get no mask. Hands: no clip here shows hands (the webcam cuts the
person at the chest), so the hand models are checked on that truth (none found)
and the envelope and its correlation on synthetic hand tracks whose timing is
known exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.models.person import BodyMotion, BodyTrack, Hand, PersonSegmenter, hand_speed
from curation.records import Clip, InputItem
from curation.signal_aligner import MotionSource, SignalAligner
from tests.conftest import SAMPLE_DATA, SPEECH_CLIP, needs
from tests.synthetic import event_times, make_clip, swap_audio

INSET = (slice(24, 82), slice(34, 110))
"""Rows and columns of the webcam inset in the decoded 384 x 216 frames (module docstring)."""
INSET_LOWER = (slice(53, 82), slice(34, 110))
"""The inset's lower half: the person's shoulders and chest, with the wall beside them."""


def _clip(path: Path) -> Clip:
    """The first clip of ``path``, decoded as curate does (384 px, 25 fps at most)."""
    return next(decode_clips(InputItem(str(path), path.stem), CurationConfig()))


@pytest.fixture(scope="module")
def segmenter() -> PersonSegmenter:
    needs("mediapipe", "cv2")
    return PersonSegmenter()


def test_the_mask_covers_the_person_in_the_webcam_inset(segmenter: PersonSegmenter) -> None:
    clip = _clip(SPEECH_CLIP)
    assert clip.frames.shape[1:3] == (216, 384)
    result = segmenter.segment(clip.frames)
    assert result.reason is None and result.mask is not None
    assert result.mask.shape == (216, 384) and result.mask.dtype == np.float64
    assert float(result.mask.min()) == 0.0 and 0.5 <= float(result.mask.max()) <= 1.0
    person = result.mask > 0
    inside = np.zeros_like(person)
    inside[INSET] = True
    assert np.count_nonzero(person & inside) >= 0.9 * np.count_nonzero(person)  # measured: all of it
    assert person[INSET_LOWER].mean() >= 0.2  # measured: 0.26 of the lower half (the wall beside him is not)
    x0, y0, x1, y1 = result.box
    assert 0.08 <= x0 < x1 <= 0.29 and 0.1 <= y0 < y1 <= 0.39  # inside the inset, 0.089-0.286 x 0.111-0.380
    assert result.share == pytest.approx(np.count_nonzero(person) / person.size)
    assert np.array_equal(segmenter.segment(clip.frames).mask, result.mask)  # no state carried between clips


@pytest.mark.parametrize("name", ["techslides_small.mp4", "psychtoolbox_dualdiscs.mov"])
def test_a_clip_without_a_person_gets_no_mask_and_says_why(segmenter: PersonSegmenter, name: str) -> None:
    result = segmenter.segment(_clip(SAMPLE_DATA / name).frames)
    assert result.mask is None and result.box is None
    assert result.reason and result.reason.startswith("no person: no face scores 0.75")


def test_no_hands_are_found_where_none_are_in_the_picture() -> None:
    needs("mediapipe", "cv2")
    body = BodyMotion()
    speech = body.track(_clip(SPEECH_CLIP).frames, 25.0)  # a person, cut at the chest by the webcam
    assert speech.presence == 0.0 and speech.box is None and np.isnan(speech.speed).all()
    assert speech.reason == "no hand at a pose's wrist in 5 evenly spaced frames"
    lego = body.track(_clip(SAMPLE_DATA / "techslides_small.mp4").frames, 25.0)  # no person at all
    assert lego.presence == 0.0 and lego.reason and lego.reason.startswith("no person")


def _hand(x: float, y: float, size: float = 20.0) -> Hand:
    """A rigid 21-point hand with its wrist at (x, y) and its middle-finger knuckle ``size`` px above."""
    shape = np.stack([np.zeros(21), -np.linspace(0.0, 1.6, 21) * size], axis=1)
    shape[9] = (0.0, -size)
    return Hand(shape + (x, y), size)


def test_hand_speed_is_in_hand_sizes_per_second_and_nan_where_unmatched() -> None:
    fps = 25.0
    moving = [_hand(10.0 + 2.0 * t, 50.0) for t in range(6)]  # 2 px per frame = 2.5 hand sizes per second
    still = _hand(200.0, 50.0)
    frames = [[moving[0], still], [still, moving[1]], [moving[2], still], [], [moving[4]], [still, moving[5]]]
    speed = hand_speed(frames, fps)
    assert np.isnan(speed[0]) and np.isnan(speed[3]) and np.isnan(speed[4])  # nothing before frame 0 or in 3
    assert speed[[1, 2, 5]] == pytest.approx([2.5, 2.5, 2.5])  # matched by the wrist, whatever the order
    far = hand_speed([[_hand(0.0, 0.0, 40.0)], [_hand(4.0, 0.0, 40.0)]], fps)  # twice as big, twice the pixels
    assert far[1] == pytest.approx(2.5)


def _clapping(events: np.ndarray, n_frames: int, fps: float) -> list[list[Hand]]:
    """Two hands that close at a steady speed over 0.2 s, touch in each event frame, rest, then ease apart.

    The contact is the only abrupt stop: the opening slows down smoothly (the
    gap follows ``1 - (1 - u)^2``), so its end is no second "impact".
    """
    gap = np.full(n_frames, 40.0)
    for event in np.round(events * fps).astype(int):
        for k in range(n_frames):
            d = k - event
            if -5 <= d <= 0:
                gap[k] = min(gap[k], 40.0 * -d / 5)
            elif 0 < d <= 2:
                gap[k] = 0.0
            elif 2 < d <= 10:
                gap[k] = min(gap[k], 40.0 * (1.0 - (1.0 - (d - 2) / 8) ** 2))
    return [[_hand(90.0 - g, 60.0), _hand(110.0 + g, 60.0)] for g in gap]  # wrists 20 px apart at contact


def clapping_source(clip: Clip, seed: int, box: tuple[float, float, float, float]) -> MotionSource:
    """The hands of `_clapping` on each event of ``make_clip(seed=seed)``, as the cue aligner hands them on."""
    fps, n = float(clip.fps), len(clip.frames)
    track = BodyTrack(hand_speed(_clapping(event_times(n / fps, fps, seed=seed), n, fps), fps), 1.0, box, None)
    return MotionSource("hands", track.candidates(), box)


@pytest.mark.parametrize("delay", [0.0, 0.2, -0.32])
def test_clapping_hands_beside_the_cells_give_the_offset_that_the_cells_cannot(delay: float) -> None:
    """The picture flashes at other times than the sound (another seed's events); the hands clap on the sound's.

    Without the hands no region's motion fits (confidence 0, measured); with them the audio's delay is found
    within a frame, and with the sound in sync the hands are the sounding source: their box is the label.
    """
    fps, box = 25.0, (0.3, 0.4, 0.6, 0.7)
    clip = swap_audio(make_clip(seconds=8.0, fps=fps, seed=4), make_clip(offset=delay, seconds=8.0, fps=fps, seed=3))
    hands = clapping_source(clip, 3, box)
    without, with_hands = SignalAligner().analyse(clip, None), SignalAligner().analyse(clip, None, hands)
    assert without.sync_confidence < 0.5 and abs(without.sync_offset - delay) > 1.0 / fps
    assert with_hands.sync_offset == pytest.approx(delay, abs=1.0 / fps) and with_hands.sync_confidence >= 0.8
    if delay == 0.0:
        assert with_hands.instance.score >= 0.9 > 0.1 > without.instance.score
        assert with_hands.box == list(box) and without.box is None
    wrong = SignalAligner().analyse(clip, None, clapping_source(clip, 5, box))  # hands that clap to other events
    assert wrong.box is None  # measured: the cells stay the best candidate, instance <= 0.06


def test_bad_input_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"frames: expected uint8 RGB \(T, H, W, 3\)"):
        PersonSegmenter().segment(np.zeros((4, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="fps must be > 0"):
        BodyMotion().track(np.zeros((4, 32, 32, 3), dtype=np.uint8), 0.0)
    clip = make_clip(seconds=4.0)
    short = MotionSource("hands", np.zeros((len(clip.frames) - 1, 2)), (0.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"hands: expected \(100, k\) finite columns"):
        SignalAligner().analyse(clip, None, short)

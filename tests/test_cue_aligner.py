"""The cpu profile's ``cues-v2`` aligner on a real talking face (forensics_hello's webcam inset) and real other clips.

The face and the audio of ``forensics_hello_excerpt.mp4`` are decoded as curate
decodes them (384 px, 25 fps), so the face is the 23-px one the pipeline sees.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from curation import lipsync
from curation.analyse import Decision
from curation.config import CurationConfig
from curation.decode import decode_clips, source_frames
from curation.models import faces
from curation.models.person import BodyTrack, PersonMask
from curation.models.speech import SpeechDetector
from curation.records import Clip, InputItem
from curation.roles import Analysis
from curation.sample import _labels
from curation.signal_aligner import SignalAligner
from curation.variants import delayed, swapped
from tests.conftest import SAMPLE_DATA, SPEECH_CLIP, needs
from tests.synthetic import make_clip, swap_audio
from tests.test_person import clapping_source

needs("mediapipe", "silero_vad", "cv2", "onnxruntime")

from curation.cue_aligner import CueAligner  # noqa: E402

FACE_CENTRE = (0.18, 0.24)
"""The speaker's face centre (x, y, normalised), read by eye from frame 60 of the excerpt."""
WEBCAM_INSET = (0.09, 0.11, 0.29, 0.38)
"""The webcam inset's box in the screen recording (read by eye): the face is inside it."""


def first_clip(path: object) -> Clip:
    return next(decode_clips(InputItem(path=str(path), video_id="clip"), CurationConfig()))


@pytest.fixture(scope="module")
def aligner() -> CueAligner:
    return CueAligner()


@pytest.fixture(scope="module")
def speech() -> Clip:
    return first_clip(SPEECH_CLIP)


@pytest.fixture(scope="module")
def analysis(aligner: CueAligner, speech: Clip) -> Analysis:
    return aligner.analyse(speech, None).rounded()


def test_the_face_and_its_lips_are_found_on_a_23_px_face(aligner: CueAligner, speech: Clip) -> None:
    assert speech.frames.shape[1:3] == (216, 384)
    (track,) = aligner.faces.track(speech.frames)
    assert track.found >= 0.9, f"the mouth is found in only {track.found:.0%} of the frames"
    x0, y0, x1, y1 = track.box()
    assert x0 < FACE_CENTRE[0] < x1 and y0 < FACE_CENTRE[1] < y1
    assert WEBCAM_INSET[0] <= x0 and x1 <= WEBCAM_INSET[2] and WEBCAM_INSET[1] <= y0 and y1 <= WEBCAM_INSET[3]
    voice = aligner.speech.activity(speech.audio, speech.fps, len(speech.frames))
    spoken, opening = voice.mask(), track.opening
    # The mouth opens to speak: wider while the VAD hears speech than in the silence around it.
    assert np.nanmean(opening[spoken]) > np.nanmean(opening[~spoken]) + 0.01


def test_the_clip_takes_the_lip_path_with_the_speech_label_and_the_face_box(analysis: Analysis) -> None:
    label, index, share = analysis.category
    assert (label, index) == ("Speech", 0) and 0.3 <= share <= 1.0 and analysis.cue == "lips"
    assert analysis.heatmap is None and analysis.box is not None
    assert analysis.box[0] < FACE_CENTRE[0] < analysis.box[2] and analysis.box[1] < FACE_CENTRE[1] < analysis.box[3]
    assert analysis.instance.raw is not None and analysis.instance.raw > 0.3, "the voice follows the lips"
    assert analysis.sync_offset is not None and 0.0 <= analysis.sync_confidence <= 1.0
    assert len(analysis.temporal_windows) == 5 and all(0.0 <= w <= 1.0 for w in analysis.temporal_windows)


def test_the_written_mask_covers_the_speaking_person_inside_the_webcam_inset(speech: Clip, analysis: Analysis) -> None:
    labels, mask = _labels(Decision(speech, analysis, None, None, None, False), 384, 216)
    assert labels["mask"] == {"present": True, "reason": None} and mask is not None
    ys, xs = np.nonzero(mask)
    inside = (xs >= WEBCAM_INSET[0] * 384) & (xs < WEBCAM_INSET[2] * 384) & (ys >= WEBCAM_INSET[1] * 216)
    inside &= ys < WEBCAM_INSET[3] * 216
    assert inside.mean() >= 0.95, f"{1 - inside.mean():.0%} of the mask lies outside the inset"
    assert mask[int(FACE_CENTRE[1] * 216), int(FACE_CENTRE[0] * 384)] == 255, "the face is part of the person"


@pytest.mark.parametrize("seconds", [-0.4, 0.2, 0.52])
def test_a_known_shift_of_the_pcm_is_recovered_within_40_ms(
    aligner: CueAligner, speech: Clip, analysis: Analysis, seconds: float
) -> None:
    # Measured against the clip's own estimate: the recording's own offset (the lips' lead over the voice, the
    # recorder's latency) is unknown, and the same for every shift of it.
    shifted, truth = delayed(speech, seconds)
    moved = aligner.analyse(shifted, None).rounded()
    assert moved.category[0] == "Speech"
    assert abs(moved.sync_offset - analysis.sync_offset - truth) <= 0.04


def test_another_clips_soundtrack_scores_lower(aligner: CueAligner, speech: Clip, analysis: Analysis) -> None:
    for other in ("techslides_small.mp4", "bbb_excerpt.mkv"):
        wrong = aligner.analyse(swapped(speech, first_clip(SAMPLE_DATA / other).audio), None).rounded()
        assert wrong.instance.score < analysis.instance.score, other


def test_the_small_faces_mouth_is_read_from_the_sources_frames(aligner: CueAligner, speech: Clip) -> None:
    # The excerpt is 640 px: the 23-px face of the written frames is 38 px there.
    assert (speech.source.width, speech.source.height) == (640, 360)
    calls: list[int] = []

    def sharper() -> Iterator[np.ndarray]:
        calls.append(1)
        return source_frames(speech.source, speech.fps, len(speech.frames))

    (from_source,) = aligner.faces.track(speech.frames, sharper)
    (written,) = aligner.faces.track(speech.frames)
    assert calls == [1] and from_source.found >= 0.9
    # The boxes are the same face's, normalised to the frame either way.
    assert np.allclose(from_source.box(), written.box(), atol=0.02)
    envelope = lipsync.speech_envelope(speech.audio, speech.fps, len(speech.frames))
    r = {
        name: lipsync.lip_sync(envelope, lipsync.mouth_series(track.opening), speech.fps, 1.0, 1.0).raw
        for name, track in (("source", from_source), ("written", written))
    }
    assert r["source"] > r["written"], f"the voice follows the source's lips no better: {r}"


def two_faces(speech: Clip, speaker: str) -> Clip:
    """The webcam inset twice side by side, upscaled twice: one copy with the clip's frames, whose lips follow the
    voice, the other with the same frames in reverse order, lips that move but not with this voice; ``speaker``
    ("left" or "right") says on which side the clip's own frames are. No source to read a sharper face from."""
    inset = speech.frames[:, 0:108, 0:128]  # holds WEBCAM_INSET
    pair = (inset, inset[::-1]) if speaker == "left" else (inset[::-1], inset)
    frames = np.repeat(np.repeat(np.concatenate(pair, axis=2), 2, axis=1), 2, axis=2)
    return replace(speech, frames=np.ascontiguousarray(frames), source=None)


@pytest.mark.parametrize("speaker", ["left", "right"])
def test_of_two_faces_the_speaker_is_the_one_whose_lips_follow_the_voice(
    aligner: CueAligner, speech: Clip, speaker: str
) -> None:
    clip = two_faces(speech, speaker)
    tracks = aligner.faces.track(clip.frames)
    assert len(tracks) == 2 and all(track.found >= 0.9 for track in tracks)
    centres = sorted((track.box()[0] + track.box()[2]) / 2 for track in tracks)
    assert centres[0] < 0.5 < centres[1], f"one face on each side: {centres}"
    analysis = aligner.analyse(clip, None).rounded()
    assert analysis.cue == "lips" and analysis.category[0] == "Speech"
    centre = (analysis.box[0] + analysis.box[2]) / 2
    assert (centre < 0.5) == (speaker == "left"), f"the box {analysis.box} is the listener's"
    assert analysis.instance.raw > 0.3, "the speaker's lips, not the listener's, are correlated"


def test_faces_are_followed_by_overlap_and_a_passing_false_face_is_not() -> None:
    def box(x: float) -> np.ndarray:
        return np.array([x, 10.0, x + 20.0, 30.0])

    # Two faces that drift; a third "face" found in 2 frames of 12 (a detector's false one); the right face missed
    # in frames 3-5. The left one is found most and comes first.
    found = [[box(100.0 + t), box(10.0 + t)] for t in range(12)]
    found[3:6] = [[box(10.0 + t)] for t in range(3, 6)]
    found[7].append(box(200.0))
    found[8].append(box(201.0))
    left, right = faces._chains(found)
    assert all(b is not None and b[0] == 10.0 + t for t, b in enumerate(left))
    assert [t for t, b in enumerate(right) if b is None] == [3, 4, 5]
    assert all(b[0] == 100.0 + t for t, b in enumerate(right) if b is not None)
    assert len(faces._chains([[box(0.0)] if t < 2 else [] for t in range(12)])) == 1, "the only face, though rare"


def test_a_source_that_cannot_be_decoded_again_leaves_the_written_frames(
    aligner: CueAligner, speech: Clip, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = replace(speech, frames=speech.frames.copy(), source=replace(speech.source, path=str(tmp_path / "gone.mp4")))
    without = replace(speech, frames=speech.frames.copy(), source=None)
    with caplog.at_level(logging.WARNING, logger="curation.cue_aligner"):
        analysis = aligner.analyse(gone, None).rounded()
    expected = aligner.analyse(without, None).rounded()
    assert (analysis.instance, analysis.sync_offset, analysis.box) == (
        expected.instance,
        expected.sync_offset,
        expected.box,
    )
    assert "forensics_hello_excerpt.mp4: the mouth is read from the written frames" in caplog.text
    assert "gone.mp4" in caplog.text


def test_a_clip_without_speech_is_scored_by_signal_v1(aligner: CueAligner) -> None:
    clip = first_clip(SAMPLE_DATA / "techslides_small.mp4")
    ours = aligner.analyse(clip, None).rounded()
    theirs = SignalAligner().analyse(clip, None).rounded()
    assert ours.instance == theirs.instance and ours.sync_offset == theirs.sync_offset
    assert ours.category is None and ours.category_reason.startswith("no speech")
    assert ours.cue == "signal" and theirs.cue is None  # calibrated with the signal cue's maps
    assert aligner.name == "cues-v2"  # the version a calibration is fitted for


def test_the_sample_prefers_an_explicit_box_and_mask(speech: Clip, analysis: Analysis) -> None:
    person = np.zeros((4, 8))
    person[1:3, 0:2] = 1.0  # the left quarter of the middle rows
    with_mask = replace(analysis, mask=person, heatmap=np.ones((8, 8))).rounded()
    labels, mask = _labels(Decision(speech, with_mask, None, None, None, False), 384, 216)
    assert labels["localization"]["box"] == with_mask.box and labels["mask"]["present"]
    assert mask.shape == (216, 384) and mask[108, 40] == 255 and mask[108, 200] == 0 and mask[10, 40] == 0
    unmasked = replace(analysis, mask=None, mask_reason=None)
    labels, mask = _labels(Decision(speech, unmasked, None, None, None, False), 384, 216)
    assert labels["localization"]["box"] == analysis.box and mask is None
    assert labels["mask"] == {"present": False, "reason": "no segmentation ran"}
    rounded = replace(analysis, box=[0.123456, 0.2, 0.3, 0.4], mask=np.full((2, 2), 0.654321)).rounded()
    assert rounded.box[0] == 0.1235 and float(rounded.mask[0, 0]) == 0.6543


def test_a_missing_model_wheel_says_what_to_install(monkeypatch: pytest.MonkeyPatch, speech: Clip) -> None:
    monkeypatch.setitem(sys.modules, "silero_vad", None)  # import silero_vad now raises ImportError
    with pytest.raises(ImportError, match="make setup-cpu"):
        SpeechDetector().activity(speech.audio, speech.fps, len(speech.frames))


class RecordedHands:
    """`BodyMotion` as it would track two hands clapping on the sound's events (no real footage here shows hands)."""

    def __init__(self, track: BodyTrack) -> None:
        self.result, self.calls = track, 0

    def track(self, frames: np.ndarray, fps: float) -> BodyTrack:
        self.calls += 1
        return self.result


def test_hands_that_move_with_the_sound_are_the_label_and_the_person_the_mask() -> None:
    """The signal path with the hands' candidates (`tests/test_person.py` checks their maths): the person whose
    hands win is masked, and the label says why it is not named."""
    box = (0.3, 0.4, 0.6, 0.7)
    clip = swap_audio(make_clip(seconds=8.0, seed=4), make_clip(seconds=8.0, seed=3))  # clicks: no speech
    source = clapping_source(clip, 3, box)
    aligner = CueAligner()
    aligner.body = RecordedHands(BodyTrack(source.columns[:, 0], 1.0, box, None))
    person = np.zeros((96, 128))
    person[40:90, 40:80] = 0.9
    aligner.person.segment = lambda frames: PersonMask(person, None, 0.16, None)
    ours = aligner.analyse(clip, None).rounded()
    assert ours.box == list(box) and ours.instance.score >= 0.9 and ours.sync_offset == pytest.approx(0.0, abs=0.04)
    assert (
        ours.category is None and ours.category_reason.startswith("no speech") and "hands move" in ours.category_reason
    )
    labels, mask = _labels(Decision(clip, ours, None, None, None, False), 128, 96)
    assert labels["localization"]["box"] == list(box) and labels["mask"]["present"] and mask[60, 60] == 255
    assert aligner.analyse(clip, None) and aligner.body.calls == 1  # the same frames again: tracked once
    aligner.body = RecordedHands(BodyTrack(np.full(len(clip.frames), np.nan), 0.0, None, "no person: ..."))
    clip = replace(clip, frames=clip.frames.copy())  # other frames: tracked anew, and no hands on them
    plain, theirs = aligner.analyse(clip, None).rounded(), SignalAligner().analyse(clip, None).rounded()
    assert plain.box is None and plain.mask is None and plain.category_reason.endswith("names speech only")
    assert (plain.instance, plain.sync_offset, plain.temporal_windows) == (
        theirs.instance,
        theirs.sync_offset,
        theirs.temporal_windows,
    )

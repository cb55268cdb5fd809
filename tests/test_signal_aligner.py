"""The CPU-profile aligner on clips with known ground truth, through real files, and on a real recording.

Offset tolerance: `OFFSET_TOLERANCE` = 20 ms, half a frame at 25 fps. Measured
on `synthetic.make_clip` (12 seeds x 17 offsets from -0.8 to +0.8 s, each
jittered off the frame grid): mean error -4.6 ms, largest 12.6 ms at 25 fps
(13.2 ms at 24 fps, 10.4 ms at 30 fps); through H.264 + AAC files, largest
10.8 ms. See docs/alignment.md.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.analyse import shift_audio
from curation.envelopes import audio_onset_envelope
from curation.localization import heatmap_to_labels
from curation.records import Clip, InputItem
from curation.roles import Aligner, Analysis
from curation.signal_aligner import SignalAligner
from tests.conftest import SAMPLE_DATA
from tests.synthetic import (
    make_clip,
    swap_audio,
    write_audio_only,
    write_corrupt_file,
    write_silent,
    write_video_file,
    write_video_only,
)

OFFSET_TOLERANCE = 0.020
"""Seconds: half a frame at 25 fps; the largest error measured on synthetic clips is 12.6 ms."""
DUALDISCS_BEEP = 1.43  # seconds, from tests/media/README.md

ALIGNER = SignalAligner()


def _decode(path: Path, max_side: int = 384) -> Clip:
    """Decode a file into a `Clip` on the video's time axis: RGB frames, 16 kHz mono audio placed by frame times."""
    with av.open(str(path)) as container:
        frames, times = [], []
        for frame in container.decode(video=0):
            scale = min(1.0, max_side / max(frame.width, frame.height))
            size = {"width": int(frame.width * scale) // 2 * 2, "height": int(frame.height * scale) // 2 * 2}
            frames.append(frame.to_ndarray(format="rgb24", **size))
            times.append(frame.time)
    fps = 1.0 / float(np.median(np.diff(times)))
    duration = len(frames) / fps
    audio = np.zeros(int(duration * AUDIO_SAMPLE_RATE), dtype=np.float32)
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SAMPLE_RATE)
        position = None
        for frame in container.decode(audio=0):
            for chunk in resampler.resample(frame):
                samples = chunk.to_ndarray()[0]
                if position is None:
                    position = int(round((frame.time - times[0]) * AUDIO_SAMPLE_RATE))
                lo, hi = max(position, 0), min(position + len(samples), len(audio))
                if lo < hi:
                    audio[lo:hi] = samples[lo - position : hi - position]
                position += len(samples)
    return Clip(InputItem(str(path), path.stem), 0, 0.0, duration, np.stack(frames), fps, audio)


def _assert_in_range(analysis: Analysis) -> None:
    for value in (analysis.instance.score, analysis.sync_confidence):
        assert value is None or (isinstance(value, float) and 0.0 <= value <= 1.0)
    assert all(isinstance(w, float) and 0.0 <= w <= 1.0 for w in analysis.temporal_windows or [])
    if analysis.heatmap is not None:
        assert analysis.heatmap.dtype == np.float64 and analysis.heatmap.ndim == 2
        assert 0.0 <= analysis.heatmap.min() and analysis.heatmap.max() <= 1.0
    assert analysis.language.score is None and analysis.language.reason
    assert analysis.category is None and analysis.category_reason
    for value, reason in (
        (analysis.instance.score, analysis.instance.reason),
        (analysis.temporal_windows, analysis.temporal_reason),
        (analysis.sync_offset, analysis.sync_reason),
        (analysis.heatmap, analysis.heatmap_reason),
    ):
        assert (value is None) == (reason is not None), (value, reason)


def test_implements_the_aligner_protocol():
    aligner: Aligner = SignalAligner(max_offset=1.0)
    assert aligner.name == "signal-v1"


# --------------------------------------------------------------------------- sync offset


@pytest.mark.parametrize("offset", [-0.8, -0.47, -0.13, 0.0, 0.07, 0.33, 0.62, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_injected_offset_is_recovered(offset, seed):
    analysis = ALIGNER.analyse(make_clip(offset=offset, seed=seed), None)
    _assert_in_range(analysis)
    assert analysis.sync_offset == pytest.approx(offset, abs=OFFSET_TOLERANCE)
    assert analysis.sync_confidence > 0.5


def test_offset_sign_positive_means_audio_late():
    late = ALIGNER.analyse(make_clip(offset=0.3), None).sync_offset
    early = ALIGNER.analyse(make_clip(offset=-0.3), None).sync_offset
    assert late > 0.25 and early < -0.25


def test_offset_beyond_the_search_range_gets_no_confidence():
    """The true lag (0.7 s) lies among the circular shifts the search may not pick, and it fits better."""
    analysis = SignalAligner(max_offset=0.3).analyse(make_clip(offset=0.7, seed=3), None)
    assert abs(analysis.sync_offset) <= 0.3 + OFFSET_TOLERANCE
    assert analysis.sync_confidence < 0.5


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_offset_is_recovered_through_a_real_file(tmp_path, container):
    """H.264 + AAC round trip: a late audio stream (container timing) plus a delay inside the audio."""
    path = write_video_file(tmp_path / f"clip.{container}", make_clip(offset=0.1, seed=5), 0.2, container)
    analysis = ALIGNER.analyse(_decode(path), None)
    assert analysis.sync_offset == pytest.approx(0.3, abs=OFFSET_TOLERANCE)


# --------------------------------------------------------------------------- instance and temporal


def test_own_audio_scores_higher_than_another_clips_audio():
    own = make_clip(seed=1)
    swapped = swap_audio(own, make_clip(seed=2))
    a, b = ALIGNER.analyse(own, None), ALIGNER.analyse(swapped, None)
    _assert_in_range(b)
    assert a.instance.score > 0.5 > b.instance.score
    assert a.instance.raw > b.instance.raw
    assert np.mean(a.temporal_windows) > 0.5 > np.mean(b.temporal_windows)


def test_scores_describe_the_clip_as_it_is_and_recover_after_realignment():
    """Instance is scored as decoded; shifting the audio by the estimated offset restores it."""
    aligned = ALIGNER.analyse(make_clip(offset=0.0, seed=4), None)
    late_clip = make_clip(offset=0.45, seed=4)
    late = ALIGNER.analyse(late_clip, None)
    assert late.instance.score < 0.5 < aligned.instance.score
    realigned = ALIGNER.analyse(shift_audio(late_clip, late.sync_offset), None)
    assert realigned.instance.score > 0.5
    assert abs(realigned.sync_offset) < OFFSET_TOLERANCE
    at_offset = SignalAligner(score_at_offset=True).analyse(late_clip, None)
    assert at_offset.instance.score > 0.5


@pytest.mark.parametrize(("seconds", "count"), [(6.0, 6), (6.4, 6), (6.5, 7), (2.7, 3), (1.2, 1), (0.7, 1)])
def test_one_temporal_window_per_whole_or_half_second(seconds, count):
    analysis = ALIGNER.analyse(make_clip(seconds=seconds, seed=6), None)
    assert len(analysis.temporal_windows) == count
    _assert_in_range(analysis)


def test_windows_of_a_synced_clip_are_high():
    analysis = ALIGNER.analyse(make_clip(seed=7), None)
    assert min(analysis.temporal_windows) > 0.5


# --------------------------------------------------------------------------- localization


@pytest.mark.parametrize(
    ("position", "size"),
    [((0.7, 0.3), (96, 128)), ((0.2, 0.75), (96, 128)), ((0.5, 0.5), (128, 96)), ((0.85, 0.15), (72, 128))],
)
def test_heatmap_peak_lands_on_the_blob(position, size):
    clip = make_clip(seed=8, position=position, size=size)
    analysis = ALIGNER.analyse(clip, None)
    height, width = size
    peak, box, mask = heatmap_to_labels(analysis.heatmap, width, height)
    assert np.hypot(peak[0] - position[0], peak[1] - position[1]) < 0.08  # measured worst case 0.058 over 20 clips
    assert box[0] <= position[0] <= box[2] and box[1] <= position[1] <= box[3]
    assert mask.shape == (height, width) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert mask[int(position[1] * height), int(position[0] * width)] == 255
    assert (mask > 0).mean() < 0.15
    assert all(0.0 <= v <= 1.0 for v in (*peak, *box))


def test_heatmap_to_labels_keeps_the_peaks_region_only():
    heat = np.zeros((8, 8), np.float32)
    heat[2, 5], heat[2, 6], heat[6, 1] = 1.0, 0.6, 0.8  # a second, separate blob at (1, 6)
    peak, box, mask = heatmap_to_labels(heat, 160, 80)
    assert 0.625 < peak[0] < 0.8 and 0.25 < peak[1] < 0.375
    assert box[0] >= 0.5 and box[3] <= 0.5
    assert mask[75, 25] == 0
    with pytest.raises(ValueError):
        heatmap_to_labels(np.zeros((8, 8)), 16, 16)


# --------------------------------------------------------------------------- degenerate inputs


def _assert_all_missing(analysis: Analysis, word: str) -> None:
    _assert_in_range(analysis)
    assert analysis.instance.score is None and word in analysis.instance.reason
    assert analysis.temporal_windows is None and word in analysis.temporal_reason
    assert analysis.sync_offset is None and analysis.sync_confidence is None and word in analysis.sync_reason
    assert analysis.heatmap is None and word in analysis.heatmap_reason


def test_static_video_gives_no_numbers():
    clip = make_clip(seed=9, frame_noise=0.0)
    _assert_all_missing(
        ALIGNER.analyse(replace(clip, frames=np.repeat(clip.frames[:1], len(clip.frames), 0)), None), "static"
    )


def test_silent_audio_gives_no_numbers():
    clip = make_clip(seed=9)
    _assert_all_missing(ALIGNER.analyse(replace(clip, audio=np.zeros_like(clip.audio)), None), "silent")
    quiet = replace(clip, audio=clip.audio * 1e-4)  # about -90 dBFS
    _assert_all_missing(ALIGNER.analyse(quiet, None), "silent")


@pytest.mark.parametrize("frequency", [1000.0, 437.3])
def test_constant_audio_gives_no_numbers(frequency):
    clip = make_clip(seed=9)
    t = np.arange(len(clip.audio)) / AUDIO_SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    _assert_all_missing(ALIGNER.analyse(replace(clip, audio=tone), None), "constant")


def test_stationary_noise_has_no_onsets():
    clip = make_clip(seed=10)
    noise = np.random.default_rng(0).normal(0, 0.1, len(clip.audio)).astype(np.float32)
    _assert_all_missing(ALIGNER.analyse(replace(clip, audio=noise), None), "constant")


def test_unrelated_sound_is_measured_but_scores_low():
    """Noise swelling and fading at its own pace: onsets exist, but not where the blob flashes."""
    clip = make_clip(seed=10)
    rng = np.random.default_rng(1)
    t = np.arange(len(clip.audio)) / AUDIO_SAMPLE_RATE
    swell = 1.0 + 0.8 * np.sin(2 * np.pi * 0.7 * t + 1.0) * np.sin(2 * np.pi * 1.9 * t)
    audio = (0.05 * swell * rng.normal(0, 1, len(t))).astype(np.float32)
    analysis = ALIGNER.analyse(replace(clip, audio=audio), None)
    _assert_in_range(analysis)
    assert analysis.instance.score is not None and analysis.instance.score < 0.5


def test_short_clip_has_no_offset_but_is_scored():
    analysis = ALIGNER.analyse(make_clip(seconds=1.5, seed=11), None)
    _assert_in_range(analysis)
    assert analysis.sync_offset is None and "2 s" in analysis.sync_reason
    assert analysis.instance.score > 0.5


def test_a_couple_of_frames_give_no_numbers():
    clip = make_clip(seconds=0.08, seed=12)
    assert len(clip.frames) == 2
    _assert_all_missing(ALIGNER.analyse(clip, None), "frames")


# --------------------------------------------------------------------------- speed


# --------------------------------------------------------------------------- a real recording


@pytest.fixture(scope="module")
def dualdiscs() -> Clip:
    """psychtoolbox_dualdiscs.mov: two discs slide together, overlap about 1.13-1.43 s; one beep at 1.43 s."""
    return _decode(SAMPLE_DATA / "psychtoolbox_dualdiscs.mov")


def test_dualdiscs_beep_is_the_audio_onset(dualdiscs):
    envelope = audio_onset_envelope(dualdiscs.audio, dualdiscs.fps, len(dualdiscs.frames))
    assert abs(np.argmax(envelope) / dualdiscs.fps - DUALDISCS_BEEP) <= 1.0 / dualdiscs.fps


def test_dualdiscs_localizes_the_beep_where_the_discs_meet(dualdiscs):
    """The beep sounds as the discs separate at the centre: the map peaks there, not on the discs' far paths."""
    analysis = ALIGNER.analyse(dualdiscs, None)
    _assert_in_range(analysis)
    assert len(analysis.temporal_windows) == 3  # 2.58 s
    height, width = dualdiscs.frames.shape[1:3]
    peak, box, _ = heatmap_to_labels(analysis.heatmap, width, height)
    assert 0.35 < peak[0] < 0.65 and 0.4 < peak[1] < 0.75
    assert box[0] > 0.2 and box[2] < 0.8  # not the corners the discs start and end in


def test_dualdiscs_single_beep_gives_no_confident_offset(dualdiscs):
    """One onset fits any burst of motion equally well: the search must not claim a confident offset."""
    analysis = ALIGNER.analyse(dualdiscs, None)
    assert analysis.sync_offset is not None and abs(analysis.sync_offset) <= 1.0
    assert analysis.sync_confidence < 0.5


# --------------------------------------------------------------------------- the file helpers


def test_reject_case_files(tmp_path):
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(write_corrupt_file(tmp_path / "corrupt.mp4")))
    with av.open(str(write_video_only(tmp_path / "video.mp4"))) as container:
        assert [s.type for s in container.streams] == ["video"]
    with av.open(str(write_audio_only(tmp_path / "audio.mp4"))) as container:
        assert [s.type for s in container.streams] == ["audio"]
    silent = _decode(write_silent(tmp_path / "silent.mp4"))
    assert np.abs(silent.audio).max() < 1e-4 and len(silent.frames) == 75


@pytest.mark.parametrize(("container", "expected"), [("matroska", 0.25), ("mp4", 0.25 - 1024 / 48_000)])
def test_audio_start_is_visible_in_the_container(tmp_path, container, expected):
    path = write_video_file(tmp_path / f"late.{container}", make_clip(seconds=2.0, seed=14), 0.25, container)
    with av.open(str(path)) as f:
        video, audio = f.streams.video[0], f.streams.audio[0]
        assert float(video.start_time * video.time_base) == pytest.approx(0.0, abs=1e-3)
        assert float(audio.start_time * audio.time_base) == pytest.approx(expected, abs=1e-3)
        assert next(f.decode(audio=0)).time == pytest.approx(expected, abs=1e-3)

"""Lip synchrony: how the voice's loudness follows the mouth's opening, on the video frame times.

Hershey & Movellan's audio-visual synchrony, SyncNet's question, without a
trained network: the mouth opens to speak louder, so in a talking face the
speech band's level rises and falls with the gap between the lips. Two series
are correlated over lags of +-``max_offset``:

* **the speech envelope**: the log power of the 300-3000 Hz band in an 80-ms
  Hann window centred on each frame's time. The band holds the first two
  formants, where a vowel's energy is and where an opening mouth changes the
  level most; it leaves out mains hum, breath and hiss, which do not follow
  the lips. The log (decibels) follows the loudness steps of syllables instead
  of the few loudest peaks, and a floor `DYNAMIC_RANGE_DB` under the clip's
  loud frames keeps silence, and the zero padding of a shifted clip, at one
  level instead of at log(0);
* **the mouth series**: `curation.models.faces`' mouth opening (outer-lip height over the eyes' distance),
  with gaps of up to `MAX_GAP_FRAMES` frames (a missed detection, a blink of
  the detector) filled linearly and longer ones left out.

Lags are counted as everywhere in this project: positive means the audio is
late. The lips move before the sound they shape (a mouth opens before the
vowel is heard), by an amount that differs from face to face, which puts an
in-sync face's peak at a small positive lag; `LIP_LEAD` is where one such lead
would be subtracted from the offset. The instance score and the windows do not
ask for lag 0 but for the best lag of audio late by up to `ACCEPTED_AUDIO_LAG`.

Everything is float64 numpy with numpy's own sums and FFT (no BLAS), as in
`curation.envelopes`, so the numbers are the same on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation import correlation
from curation.correlation import above_chance, peak_confidence, unit
from curation.localization import parabolic_offset

BAND_HZ = (300.0, 3000.0)
"""The speech band whose level the envelope follows (first and second formants)."""
WINDOW_FRAMES = 2.0
"""Length of the envelope's Hann window in frame periods (80 ms at 25 fps): each frame's neighbourhood, no more."""
DYNAMIC_RANGE_DB = 40.0
"""Floor of the envelope below the clip's loud frames (95th percentile): quieter is silence, whatever its level."""
MAX_GAP_FRAMES = 5
"""Longest run of frames without a mouth that is interpolated (0.2 s at 25 fps); longer runs are left out."""
MIN_PAIRS = 25
"""Fewest frames with both a mouth and audio for a correlation (1 s at 25 fps)."""
LIP_LEAD = 0.0
"""Seconds by which the lips lead the voice, subtracted from the estimated offset: 0, not fitted. The benchmark's
five talking faces read +0.005, +0.097, +0.103, +0.191 and +0.241 s in sync, and two recordings of one man, both
in sync to a frame by their bilabial stops, read +0.005 and +0.191 s (BENCHMARKS.md): the lead is not one number."""
ACCEPTED_AUDIO_LAG = 0.185
"""Seconds of audio after the lips within which a voice counts as these lips' own, for the instance score and the
windows: ITU-R BT.1359's threshold of acceptability for sound late on picture. A score at lag 0 alone held each
face's own lead against it (the in-sync faces above lose up to 0.17 of r at lag 0), and a clip whose sound is
that little late is one viewers accept; the offset search still reports the lag itself."""


@dataclass
class LipSync:
    """The lip path's measurements on one clip."""

    raw: float | None
    """The largest Pearson r of the speech envelope with the mouth series as decoded, at an audio lag from 0 to
    `ACCEPTED_AUDIO_LAG` (``instance_lag``); None if not enough pairs."""
    chance: float
    """The same largest r, as a median over circular shifts too large to be the answer: what this voice fits these
    lips by chance."""
    offset: float | None
    """Estimated audio delay, seconds (positive: audio late); None with ``reason``."""
    confidence: float | None
    reason: str | None
    instance_lag: int = 0
    """Frames of audio lag at which ``raw`` was found."""
    peak: float | None = None
    """The largest r over the lag search (``raw`` where there is none): how well these lips follow this voice at
    their best lag, which a shift of the audio changes little while the true lag stays well inside the search. The
    speaker's face is the one with the highest."""


def speech_envelope(audio: np.ndarray, fps: float, n_frames: int, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """(n_frames,) float64 log power (dB) of the `BAND_HZ` band around each frame's time, floored (module docstring)."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    width = 2 * int(round(WINDOW_FRAMES * sample_rate / fps / 2))
    centres = np.round(np.arange(n_frames) * sample_rate / fps).astype(np.int64)
    idx = centres[:, None] + np.arange(-width // 2, width // 2)[None, :]
    inside = (idx >= 0) & (idx < len(audio))
    blocks = np.where(inside, audio[np.clip(idx, 0, max(len(audio) - 1, 0))] if len(audio) else 0.0, 0.0)
    bins = np.fft.rfft(blocks * np.hanning(width), axis=1)
    freqs = np.fft.rfftfreq(width, 1.0 / sample_rate)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    power = np.sum(bins.real[:, band] ** 2 + bins.imag[:, band] ** 2, axis=1)  # not abs(): CPU-dependent last bit
    loud = float(np.percentile(power, 95)) if n_frames else 0.0
    floor = max(loud * 10.0 ** (-DYNAMIC_RANGE_DB / 10.0), 1e-20)
    return 10.0 * np.log10(np.maximum(power, floor))


def mouth_series(opening: np.ndarray, max_gap: int = MAX_GAP_FRAMES) -> np.ndarray:
    """``opening`` with runs of at most ``max_gap`` NaN frames between two found ones interpolated linearly."""
    out = np.asarray(opening, dtype=np.float64).copy()
    found = np.flatnonzero(np.isfinite(out))
    for a, b in zip(found[:-1], found[1:], strict=True):
        if 1 < b - a <= max_gap + 1:
            out[a + 1 : b] = np.interp(np.arange(a + 1, b), [a, b], [out[a], out[b]])
    return out


def pearson(a: np.ndarray, b: np.ndarray, min_pairs: int = MIN_PAIRS) -> float:
    """`curation.correlation.pearson` over the pairs where both are finite (the mouth has gaps); NaN with fewer
    than ``min_pairs`` or no variance."""
    ok = np.isfinite(a) & np.isfinite(b)
    if int(ok.sum()) < max(min_pairs, 3):
        return float("nan")
    return float(correlation.pearson(a[ok], b[ok][:, None])[0])


def at_lag(envelope: np.ndarray, mouth: np.ndarray, lag: int, min_pairs: int = MIN_PAIRS) -> float:
    """Pearson r of ``envelope[t + lag]`` with ``mouth[t]`` over their overlap (positive ``lag``: audio late)."""
    return pearson(*correlation.overlap(envelope, mouth, lag), min_pairs)


def circular(envelope: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    """r of the envelope circularly shifted by every lag ``L`` (``envelope[(t + L) % n]``) with the mouth series."""
    return np.array([pearson(np.roll(envelope, -lag), mouth) for lag in range(len(envelope))])


def accepted_lags(fps: float) -> int:
    """The largest whole number of frames within `ACCEPTED_AUDIO_LAG`."""
    return int(math.floor(ACCEPTED_AUDIO_LAG * fps + 1e-9))


def best_accepted(envelope: np.ndarray, mouth: np.ndarray, fps: float) -> tuple[float, int]:
    """The largest r at audio lags 0 .. `accepted_lags` frames (NaN if none has enough pairs) and its lag."""
    rs = np.array([at_lag(envelope, mouth, lag) for lag in range(accepted_lags(fps) + 1)])
    if not np.isfinite(rs).any():
        return float("nan"), 0
    lag = int(np.nanargmax(rs))
    return float(rs[lag]), lag


def lip_sync(envelope: np.ndarray, mouth: np.ndarray, fps: float, max_offset: float, min_overlap: float) -> LipSync:
    """Instance r (`best_accepted`), its chance level, and the offset search over +-``max_offset`` with its
    confidence."""
    n = len(envelope)
    raw, instance_lag = best_accepted(envelope, mouth, fps)
    null = circular(envelope, mouth)
    max_lag = int(math.floor(min(max_offset, n / fps - min_overlap) * fps + 1e-9))
    impossible = null[max_lag + 1 : n - max_lag] if n > 2 * max_lag + 1 else np.zeros(0)
    width = min(accepted_lags(fps) + 1, len(impossible))  # a short clip has fewer impossible shifts: the best of all
    by_chance = [
        np.nanmax(impossible[k : k + width])
        for k in range(len(impossible) - width + 1)
        if np.isfinite(impossible[k : k + width]).any()
    ]
    chance = float(np.median(by_chance)) if by_chance else 0.0
    raw_value = raw if math.isfinite(raw) else None
    if max_lag < 1:
        reason = "offset search range is shorter than one frame"
        return LipSync(raw_value, chance, None, None, reason, instance_lag, raw_value)
    lags = np.arange(-max_lag, max_lag + 1)
    curve = np.array([at_lag(envelope, mouth, int(lag), max(MIN_PAIRS, int(min_overlap * fps))) for lag in lags])
    curve = np.where(np.isfinite(curve), curve, -np.inf)
    i = int(np.argmax(curve))
    peak = float(curve[i]) if math.isfinite(curve[i]) else None
    if not curve[i] > 0.0:
        return LipSync(
            raw_value, chance, None, None, "the voice does not follow the lips at any lag", instance_lag, peak
        )
    offset = (lags[i] + parabolic_offset(curve, i)) / fps - LIP_LEAD
    return LipSync(raw_value, chance, float(offset), peak_confidence(curve, i, impossible), None, instance_lag, peak)


def instance_score(sync: LipSync) -> float:
    """The instance correlation over its chance level, in [0, 1] (`curation.correlation.above_chance`)."""
    return above_chance(sync.raw, sync.chance) if sync.raw is not None else 0.0


def windows(
    envelope: np.ndarray,
    mouth: np.ndarray,
    fps: float,
    duration: float,
    spoken: np.ndarray,
    silent_score: float,
    lag: int = 0,
) -> list[float]:
    """Per-1-s-window r at the instance's ``lag`` (`LipSync.instance_lag`: the frames of mouth ``t`` against the
    envelope at ``t + lag``), clipped to [0, 1]; a window without enough lips or variance scores 0.

    A window in which the VAD hears speech in fewer than a quarter of the
    frames (``spoken``, read at ``t + lag`` too: the speech these lips shape)
    says nothing about the lips (a closed mouth in silence fits any quiet
    audio): it scores ``silent_score``, the clip's instance score. The last
    ``lag`` frames have no audio at ``t + lag``; they are not counted against
    their window's pairs, and their speech is their own frames'.
    """
    if lag < 0:
        raise ValueError(f"the windows' lag must be 0 or more frames (audio late), got {lag}")
    n = len(envelope)
    lag = min(lag, n)
    envelope = np.concatenate([envelope[lag:], np.full(lag, np.nan)])
    spoken = np.concatenate([spoken[lag:], spoken[n - lag :]])
    past_end = np.arange(n) >= n - lag
    count = int(math.floor(duration)) + (1 if duration - math.floor(duration) >= 0.5 else 0)
    times = np.arange(n) / fps
    out = []
    for w in range(count):
        t = (times >= w) & (times < w + 1)
        if not t.any() or float(np.mean(spoken[t])) < 0.25:
            out.append(unit(silent_score))
            continue
        r = pearson(envelope[t], mouth[t], min_pairs=int(fps / 2) - int(np.sum(t & past_end)))
        out.append(unit(r) if math.isfinite(r) else 0.0)
    return out

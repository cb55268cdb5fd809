"""Variants of an in-sync clip whose audio-visual offset is known, for `curation.evaluate`.

Three kinds, each the way a real desynchronisation or mismatch looks:

* **content shift** (`delayed`): the PCM itself is moved (zero-padded at one
  end, trimmed at the other), so the truth is exact to the sample;
* **container shift** (`write_container_shift`, then `curation.decode`): the
  clip is re-encoded (H.264 + AAC 48 kHz in MP4) at its source's resolution,
  as a desynchronised upload would be, with the audio stream starting
  later than the video, or the video later than the audio, as a muxing error
  leaves a file. The decoder honours stream start times, but AAC priming (1024
  samples, 21.3 ms at 48 kHz) and the MP4 edit list move what a reader sees, so
  the truth of such a variant is *measured* (`measured_delay`): the lag at which
  its decoded audio best matches the original's;
* **swap** (`swapped`): the clip's frames with another clip's soundtrack, chosen
  so that the two soundtracks differ (`same_soundtrack`).

A positive delay makes the audio late, as `curation.roles.Analysis.sync_offset` counts it.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.analyse import shift_audio
from curation.decode import source_frames
from curation.encode import X264_PARAMS
from curation.records import Clip

SR = AUDIO_SAMPLE_RATE
X264_OPTIONS = {"preset": "veryfast", "crf": "20", "threads": "1", "x264-params": X264_PARAMS}
"""libx264's options for the re-encoded variants: one thread and the writer's `X264_PARAMS`, so the bytes repeat."""
CONTAINER_AUDIO_RATE = 48_000
"""The re-encoded variant's AAC rate: what real files mostly carry (and what sets the priming to 21.3 ms)."""
MATCH_CORRELATION = 0.5
"""Normalised cross-correlation at or above which two soundtracks are one (a truth is measured; no swap is made)."""
MIN_OVERLAP_SECONDS = 0.5
"""A lag must keep this much audio in common to be compared (shorter overlaps correlate by chance)."""


def delayed(clip: Clip, seconds: float) -> tuple[Clip, float]:
    """The clip with its audio ``seconds`` late (negative: early), and the exact delay (rounded to a sample)."""
    samples = int(round(seconds * SR))
    return shift_audio(clip, -samples / SR), samples / SR


def swapped(clip: Clip, soundtrack: np.ndarray) -> Clip:
    """``clip``'s frames with ``soundtrack`` cut, or zero-padded at the end, to the clip's length."""
    audio = np.zeros_like(clip.audio)
    n = min(len(audio), len(soundtrack))
    audio[:n] = soundtrack[:n]
    return replace(clip, audio=audio)


def write_container_shift(clip: Clip, seconds: float, path: Path) -> Path:
    """Re-encode ``clip`` to an MP4 whose audio stream starts ``seconds`` after its video (negative: before).

    The frames are the source's (`curation.decode.source_frames`), at its size rounded down to even numbers for
    H.264, where the clip has a source; else the clip's own.
    """
    rate = Fraction(clip.fps).limit_denominator(1001)
    video_time_base = Fraction(1, 90_000)
    if clip.source is None:
        frames, (height, width) = iter(clip.frames), clip.frames.shape[1:3]
    else:
        frames = source_frames(clip.source, float(clip.fps), len(clip.frames))
        width, height = clip.source.width // 2 * 2, clip.source.height // 2 * 2
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=rate, options=X264_OPTIONS)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = video_time_base  # a fine grid: the first frame can start at any time
        audio = out.add_stream("aac", rate=CONTAINER_AUDIO_RATE, layout="mono")
        video_start, audio_start = max(0.0, -seconds), max(0.0, seconds)
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:height, :width]), format="rgb24")
            frame.pts = round((video_start + k / clip.fps) * 90_000)
            frame.time_base = video_time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = _resampled(clip.audio, CONTAINER_AUDIO_RATE)
        first = int(round(audio_start * CONTAINER_AUDIO_RATE))
        for i in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, i : i + 1024], format="fltp", layout="mono")
            frame.sample_rate = CONTAINER_AUDIO_RATE
            frame.pts = first + i
            frame.time_base = Fraction(1, CONTAINER_AUDIO_RATE)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


def _resampled(audio: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz mono float32 to ``rate`` with FFmpeg's resampler (swr), as a real file's audio would be."""
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(audio[None], dtype=np.float32), format="fltp", layout="mono"
    )
    frame.sample_rate = SR
    chunks = [out.to_ndarray()[0] for out in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)


def correlation_by_lag(original: np.ndarray, variant: np.ndarray, max_lag: float) -> tuple[np.ndarray, np.ndarray]:
    """Lags (samples, within ``max_lag`` s) and the normalised correlation of ``variant[n]`` with ``original[n - lag]``.

    Each lag is normalised by the energies of the two signals over their overlap
    at that lag, so that a padded or trimmed copy scores 1 at its true lag
    however much of it was cut. Lags with less than `MIN_OVERLAP_SECONDS` in
    common, or with no energy in the overlap, score -1.
    """
    a, b = np.asarray(original, np.float64), np.asarray(variant, np.float64)
    n = len(a) + len(b)
    size = 1 << (n - 1).bit_length()
    full = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    reach = int(round(max_lag * SR))
    lags = np.arange(-min(reach, len(a) - 1), min(reach, len(b) - 1) + 1)
    dots = full[lags % size]
    ca, cb = np.concatenate([[0.0], np.cumsum(a * a)]), np.concatenate([[0.0], np.cumsum(b * b)])
    lo, hi = np.maximum(0, lags), np.minimum(len(b), len(a) + lags)
    energy = (cb[hi] - cb[lo]) * (ca[hi - lags] - ca[lo - lags])
    usable = (hi - lo >= MIN_OVERLAP_SECONDS * SR) & (energy > 0)
    normalised = np.full(len(lags), -1.0)
    normalised[usable] = dots[usable] / np.sqrt(energy[usable])
    return lags, normalised


def measured_delay(original: np.ndarray, variant: np.ndarray, max_lag: float) -> tuple[float | None, float]:
    """How late ``variant``'s audio is against ``original``'s (seconds, to a sample) and the correlation there.

    None when no lag within ``max_lag`` matches at `MATCH_CORRELATION` or more:
    the variant's audio is then not a shifted copy of the original.
    """
    lags, normalised = correlation_by_lag(original, variant, max_lag)
    best = int(np.argmax(normalised))
    peak = float(normalised[best])
    return (float(lags[best]) / SR if peak >= MATCH_CORRELATION else None), peak


def same_soundtrack(a: np.ndarray, b: np.ndarray, max_lag: float) -> bool:
    """Whether ``b`` is ``a`` (or part of it) at some lag within ``max_lag``: the same recording, not a swap."""
    return measured_delay(a, b, max_lag)[0] is not None

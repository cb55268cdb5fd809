"""Synthetic clips and files with known ground truth, for the aligner's and the pipeline's tests.

`make_clip` draws a static textured scene with one blob that flashes at random
event times, and puts a click/beep burst in the audio at each event, delayed
by a chosen offset: the sync offset, the sounding position and the event
times are all known exactly. The ``write_*`` helpers turn clips into real
media files (H.264 + AAC through PyAV) and make the broken inputs curation
must reject.

Conventions: frame ``k`` is shown at ``k / fps``; a flash that starts in frame
``k`` is in sync with a burst that starts at ``k / fps`` seconds. A positive
offset makes the audio late.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from curation.records import Clip, InputItem

SAMPLE_RATE = 16_000
FLASH = (1.0, 0.7, 0.45, 0.25, 0.1)
"""Blob brightness in the frames from an event on: a fast attack and a decay, like the audio burst."""


def event_times(seconds: float, fps: float, seed: int = 0, margin: float = 2.0) -> np.ndarray:
    """Event times (on frame times) from ``-margin`` to ``seconds + margin``, with irregular 0.35-1.1 s gaps.

    Irregular gaps give the cross-correlation a single peak; the margin lets
    a delayed or early audio track carry the bursts of events just outside the
    picture, as a clip cut from a longer desynchronised video would.
    """
    rng = np.random.default_rng(seed)
    times = []
    t = -margin + rng.uniform(0.0, 0.5)
    while t < seconds + margin:
        times.append(round(t * fps) / fps)
        t += rng.uniform(0.35, 1.1)
    return np.array(times)


def make_clip(
    offset: float = 0.0,
    seconds: float = 6.0,
    fps: float = 25,
    seed: int = 0,
    size: tuple[int, int] = (96, 128),
    position: tuple[float, float] = (0.7, 0.3),
    noise: float = 0.003,
    frame_noise: float = 1.5,
) -> Clip:
    """A clip whose blob at ``position`` (x, y in [0, 1]) flashes at each event, with audio ``offset`` s late.

    ``size`` is (height, width) in pixels. ``noise`` is the audio noise RMS
    (about -50 dBFS by default) and ``frame_noise`` the per-frame pixel noise
    in gray levels, so that nothing is unrealistically clean.
    """
    rng = np.random.default_rng(seed + 1_000_003)
    height, width = size
    n_frames = int(round(seconds * fps))
    events = event_times(seconds, fps, seed)

    # A static textured background: smooth random shading plus fine texture.
    coarse = rng.uniform(60, 160, size=(height // 8 + 2, width // 8 + 2, 3))
    background = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    background = background + rng.normal(0, 12, size=(height, width, 3))
    yy, xx = np.mgrid[0:height, 0:width]
    radius = 0.07 * min(height, width) + 2
    cx, cy = position[0] * width, position[1] * height
    blob = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2)))[..., None] * np.array([255.0, 230.0, 120.0])

    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    level = np.zeros(n_frames)
    for t in events:
        k = int(round(t * fps))
        for j, value in enumerate(FLASH):
            if 0 <= k + j < n_frames:
                level[k + j] = max(level[k + j], value)
    for k in range(n_frames):
        image = background + level[k] * blob + rng.normal(0, frame_noise, size=(height, width, 1))
        frames[k] = np.clip(image, 0, 255).astype(np.uint8)

    n_samples = int(seconds * SAMPLE_RATE)
    audio = rng.normal(0, noise, size=n_samples)
    for t in events + offset:
        _add_burst(audio, t, rng)
    item = InputItem(path=f"synthetic://seed{seed}", video_id=f"synthetic-{seed}")
    return Clip(item, 0, 0.0, float(seconds), frames, float(fps), audio.astype(np.float32))


def _add_burst(audio: np.ndarray, start: float, rng: np.random.Generator) -> None:
    """Add a 60-ms click/beep (tone plus noise, instant attack, 15 ms decay) starting at ``start`` seconds."""
    n = int(0.06 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    freq = rng.uniform(700, 2000)
    burst = (0.35 * np.sin(2 * math.pi * freq * t) + 0.15 * rng.normal(0, 1, n)) * np.exp(-t / 0.015)
    i0 = int(round(start * SAMPLE_RATE))
    lo, hi = max(0, i0), min(len(audio), i0 + n)
    if lo < hi:
        audio[lo:hi] += burst[lo - i0 : hi - i0]


def swap_audio(clip_a: Clip, clip_b: Clip) -> Clip:
    """``clip_a``'s frames with ``clip_b``'s audio (cut or zero-padded to ``clip_a``'s length)."""
    audio = np.zeros_like(clip_a.audio)
    n = min(len(audio), len(clip_b.audio))
    audio[:n] = clip_b.audio[:n]
    return replace(clip_a, audio=audio)


# --------------------------------------------------------------------------- files


def write_video_file(
    path: str | Path,
    clip: Clip,
    audio_start: float = 0.0,
    container: str = "mp4",
    sample_rate: int = 48_000,
) -> Path:
    """Write ``clip`` as H.264 + AAC; the audio stream starts ``audio_start`` s after the video (container timing).

    The video's first frame gets pts 0 and the audio's first sample pts
    ``audio_start``; a negative ``audio_start`` delays the video instead. The
    audible content then lies exactly ``audio_start`` after the first frame in
    every container. What a reader sees as the audio stream's start differs by
    container: Matroska reports ``audio_start`` exactly; MP4/MOV report it
    minus the AAC encoder's 1024-sample priming (21.3 ms at 48 kHz) whenever
    ``audio_start > 0``, because the priming is then decoded as leading
    near-silence instead of being cut by the edit list. Readers that place the
    decoded samples at their frames' times get the content right either way.
    The audio is resampled to ``sample_rate`` (48 kHz, as real files mostly carry).
    """
    path = Path(path)
    with av.open(str(path), "w", format=container) as out:
        video = _video_stream(out, clip)
        audio = out.add_stream("aac", rate=sample_rate, layout="mono")
        _write_video(out, video, clip, max(0.0, -audio_start))
        _write_audio(out, audio, _resample(clip.audio, SAMPLE_RATE, sample_rate), sample_rate, max(0.0, audio_start))
    return path


def _video_stream(out: av.container.OutputContainer, clip: Clip) -> av.video.stream.VideoStream:
    video = out.add_stream("libx264", rate=Fraction(clip.fps).limit_denominator(1001))
    video.width, video.height = clip.frames.shape[2], clip.frames.shape[1]
    video.pix_fmt = "yuv420p"
    # A fine codec time base lets the first frame start at any time, not only on the frame grid.
    video.codec_context.time_base = Fraction(1, 90_000)
    video.options = {"preset": "ultrafast", "crf": "18"}
    return video


def _write_video(
    out: av.container.OutputContainer, stream: av.video.stream.VideoStream, clip: Clip, start: float
) -> None:
    for k, image in enumerate(clip.frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = round((start + k / clip.fps) * 90_000)
        frame.time_base = stream.codec_context.time_base
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _write_audio(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: np.ndarray, rate: int, start: float
) -> None:
    first = int(round(start * rate))
    for i in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(samples[None, i : i + 1024].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = first + i
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _resample(audio: np.ndarray, source: int, target: int) -> np.ndarray:
    """Linear-interpolation resampling: enough for test signals."""
    if source == target:
        return np.asarray(audio, dtype=np.float32)
    n = int(round(len(audio) * target / source))
    return np.interp(np.arange(n) * source / target, np.arange(len(audio)), audio).astype(np.float32)


def write_corrupt_file(path: str | Path, size: int = 4096, seed: int = 0) -> Path:
    """Random bytes under a media extension (give it ``.mp4``): no demuxer recognises them."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def write_video_only(path: str | Path, seconds: float = 3.0, seed: int = 0) -> Path:
    """An H.264 file (container from the extension) with no audio stream."""
    clip = make_clip(seconds=seconds, seed=seed)
    with av.open(str(path), "w") as out:
        _write_video(out, _video_stream(out, clip), clip, 0.0)
    return Path(path)


def write_audio_only(path: str | Path, seconds: float = 3.0, seed: int = 0) -> Path:
    """An AAC file (container from the extension) with no video stream."""
    clip = make_clip(seconds=seconds, seed=seed)
    with av.open(str(path), "w") as out:
        audio = out.add_stream("aac", rate=48_000, layout="mono")
        _write_audio(out, audio, _resample(clip.audio, SAMPLE_RATE, 48_000), 48_000, 0.0)
    return Path(path)


def write_silent(path: str | Path, seconds: float = 3.0, seed: int = 0) -> Path:
    """A normal H.264 + AAC file whose soundtrack is digital silence (and whose picture moves)."""
    clip = make_clip(seconds=seconds, seed=seed)
    return write_video_file(path, replace(clip, audio=np.zeros_like(clip.audio)))

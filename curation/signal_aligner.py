"""The CPU profile's aligner: audio-visual alignment from the signals alone, no model weights.

Algorithm 1 scores a clip with ImageBind; the ``cpu`` profile has no model, so it
measures the one thing that needs none: whether the sound's *changes* happen
when, and where, the picture changes: audio onset strength against visual
motion energy per image region, two envelopes on the video frame times
(`curation.envelopes`).

Everything below is a Pearson correlation between those envelopes, with the
audio envelope compared against the whole frame's and each cell's motion (the
best of these "candidates" is the sounding region):

* sync offset: the lag (within +-``max_offset``) where the audio envelope best
  correlates with any candidate, refined to a fraction of a frame by a
  parabola through the peak; positive means the audio is late. Confidence is
  the peak's margin over its best rival (outside the peak's own lobe, or at a
  circular shift too large to be the answer), as a fraction of the headroom
  above that rival: 0 when a coincidence fits as well, 1 for a unique fit.
* instance score: the best candidate's correlation with the clip as it is
  (zero lag), corrected for chance: ``(r - r0) / (1 - r0)`` clipped to [0, 1],
  where ``r0`` is the median best-candidate correlation over circular shifts
  of the audio (what picking the best of 65 regions gives by coincidence).
  ``Score.raw`` is ``r`` itself.
* temporal windows: the best candidate's correlation inside each 1-s window,
  clipped to [0, 1] (a window without co-varying change scores 0).
* a tracked source (`MotionSource`, the cpu profile's hands): its columns
  stand beside the cells as more candidates; when one of them is the best at
  the scored lag and beats chance, its box is the localization label.
* heatmap: each cell's correlation, clipped at 0 and weighted by the cell's
  motion spread over the strongest cell's (so it peaks at the source's centre,
  not at any cell that catches its edge).

A value that cannot be measured (silent or constant audio, a static picture, a
clip too short to search an offset) is ``None`` with a reason, never a guess.
See docs/alignment.md for the method, its normalisations, limits and the
measured offset tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation.correlation import above_chance, lag_table, peak_confidence, pearson, pearson_at_lag, unit
from curation.envelopes import HOP, WINDOW, audio_onset_envelope, motion_envelopes
from curation.localization import parabolic_offset
from curation.records import Clip
from curation.roles import Analysis, Score

LANGUAGE_REASON = "no text-audio-visual embedder in the cpu profile"
MIN_SYNC_SECONDS = 2.0
"""Shortest clip whose offset is searched: every lag must leave at least `MIN_OVERLAP_SECONDS` of overlap."""
MIN_OVERLAP_SECONDS = 1.0
CONSTANT_DB = 1.0
"""Audio whose loudest 100-ms block is within this of its quieter blocks (10th percentile) has no onsets."""
STATIC_LEVEL = 0.5
"""Mean absolute frame difference (gray levels out of 255) that no grid cell reaching makes the picture static."""


@dataclass(frozen=True)
class MotionSource:
    """A thing a model tracked in the frames, as motion candidates beside the grid's cells (the hands of a person).

    A cell sees a clap as a few pixels of its average; a tracked hand's speed in
    hand sizes per second is the clap itself, wherever the hand is.
    """

    name: str
    columns: np.ndarray
    """``(T, k)`` envelopes on the frame times (flat columns are ignored, like a static cell)."""
    box: tuple[float, float, float, float]
    """Where the source is in the frame, normalised ``(x0, y0, x1, y1)``: the localization label when it wins."""


class SignalAligner:
    """The ``signal-v1`` `Aligner`: onset/motion correlation, numpy only (about 25 ms per 10-s 384-px clip)."""

    name = "signal-v1"

    def __init__(
        self,
        max_offset: float = 1.0,
        grid: int = 8,
        silence_dbfs: float = -60.0,
        score_at_offset: bool = False,
    ) -> None:
        """``score_at_offset`` scores instance, windows and heatmap at the estimated offset instead of as decoded.

        The default scores the clip as it is, because that is the audio the
        pipeline writes: `curation.analyse.realign_all` shifts the audio by the
        offset and analyses again when it wants the re-aligned score.
        """
        if max_offset < 0:
            raise ValueError(f"max_offset must be >= 0, got {max_offset}")
        if grid < 1:
            raise ValueError(f"grid must be >= 1, got {grid}")
        self.max_offset = float(max_offset)
        self.grid = int(grid)
        self.silence_dbfs = float(silence_dbfs)
        self.score_at_offset = bool(score_at_offset)

    def analyse(self, clip: Clip, caption: str | None, source: MotionSource | None = None) -> Analysis:
        """Measure sync, instance, temporal and localization from ``clip``'s signals (``caption`` is unused), with
        ``source``'s columns as candidates beside the cells."""
        del caption  # no text model in this profile
        n_frames = len(clip.frames)
        fps = float(clip.fps)
        duration = float(clip.duration) if clip.duration > 0 else n_frames / fps if fps > 0 else 0.0
        reason = degenerate(clip, self.silence_dbfs)
        if reason is not None:
            return Analysis.missing(reason, LANGUAGE_REASON)
        audio_env = audio_onset_envelope(clip.audio, fps, n_frames)
        if not np.std(audio_env) > 1e-6:
            return Analysis.missing("no audio onsets: the audio is constant", LANGUAGE_REASON)
        cells, whole = motion_envelopes(clip.frames, self.grid)
        if float(cells.max()) < STATIC_LEVEL:  # per cell, so a small moving object in a still scene counts
            return Analysis.missing(
                f"static video: no region's frame difference reaches {STATIC_LEVEL:g} gray levels", LANGUAGE_REASON
            )

        # Column 0 is the whole frame, then the cells row by row, then the source's; a flat column correlates as NaN.
        columns = [whole[:, None], cells.reshape(n_frames, -1)]
        if source is not None:
            tracked = np.asarray(source.columns, dtype=np.float64)
            if tracked.ndim != 2 or len(tracked) != n_frames or not np.isfinite(tracked).all():
                raise ValueError(f"{source.name}: expected ({n_frames}, k) finite columns, got {tracked.shape}")
            columns.append(tracked)
        candidates = np.concatenate(columns, axis=1)
        n_cells = cells.shape[1] * cells.shape[2]
        circular = _circular_table(audio_env, candidates)

        sync_offset, sync_confidence, sync_reason, best_lag = self._sync(audio_env, candidates, circular, fps, duration)
        lag = best_lag if (self.score_at_offset and best_lag is not None) else 0

        at_lag = pearson_at_lag(audio_env, candidates, lag)
        best = None
        if not np.isfinite(at_lag).any():
            instance = Score.missing("audio and motion do not overlap at the scored lag")
        else:
            best = int(np.nanargmax(at_lag))
            raw = float(at_lag[best])
            instance = Score(score=above_chance(raw, _chance(circular)), raw=raw)

        motion = candidates[:, best] if best is not None else None
        windows, windows_reason = _windows(audio_env, motion, lag, fps, duration)

        cell_r, cell_motion = at_lag[1 : 1 + n_cells], candidates[:, 1 : 1 + n_cells]
        heatmap, heatmap_reason = _heatmap(cell_r, cell_motion, cells.shape[1:]), None
        won = source is not None and best is not None and best > n_cells and bool(instance.score)
        if not instance.score:  # None or 0: the best region is no better than chance, so no region is "sounding"
            heatmap, heatmap_reason = None, instance.reason or "audio-visual correlation is no better than chance"
        elif not float(heatmap.max()) > 0.0:
            heatmap, heatmap_reason = None, "no image region's motion correlates positively with the audio onsets"

        return Analysis(
            language=Score.missing(LANGUAGE_REASON),
            instance=instance,
            temporal_windows=windows,
            temporal_reason=windows_reason,
            sync_offset=sync_offset,
            sync_confidence=sync_confidence,
            sync_reason=sync_reason,
            heatmap=heatmap,
            heatmap_reason=heatmap_reason,
            box=list(source.box) if won else None,
        )

    def _sync(
        self, audio_env: np.ndarray, candidates: np.ndarray, circular: np.ndarray, fps: float, duration: float
    ) -> tuple[float | None, float | None, str | None, int | None]:
        """(offset s, confidence, reason, best integer lag in frames) of the cross-correlation search."""
        if duration < MIN_SYNC_SECONDS:
            return None, None, f"clip shorter than {MIN_SYNC_SECONDS:g} s: too short for the offset search", None
        n = len(audio_env)
        max_lag = int(math.floor(min(self.max_offset, n / fps - MIN_OVERLAP_SECONDS) * fps + 1e-9))
        if max_lag < 1:
            return None, None, "offset search range is shorter than one frame", None
        lags = np.arange(-max_lag, max_lag + 1)
        table = lag_table(audio_env, candidates, max_lag)
        table = np.where(np.isfinite(table), table, -np.inf)
        curve = table.max(axis=1)
        i = int(np.argmax(curve))
        peak = float(curve[i])
        if not np.isfinite(peak) or peak <= 0.0:
            return None, None, "audio onsets do not correlate positively with motion at any lag", None
        column = table[:, int(np.argmax(table[i]))]
        delta = parabolic_offset(column, i)
        offset = (lags[i] + delta) / fps
        impossible = circular[max_lag + 1 : n - max_lag].max(axis=1) if n > 2 * max_lag + 1 else np.zeros(0)
        return float(offset), peak_confidence(curve, i, impossible), None, int(lags[i])


# --------------------------------------------------------------------------- helpers


def degenerate(clip: Clip, silence_dbfs: float) -> str | None:
    """Why nothing can be measured on ``clip``, or None."""
    frames = np.asarray(clip.frames)
    if not clip.fps > 0:
        return f"invalid frame rate {clip.fps!r}"
    if frames.ndim not in (3, 4) or len(frames) < 3:
        return "fewer than 3 frames: no motion to measure"
    audio = np.asarray(clip.audio, dtype=np.float64).reshape(-1)
    if len(audio) < WINDOW + 2 * HOP:
        return "audio shorter than 26 ms: no onsets to measure"
    rms = float(np.sqrt(np.mean(np.square(audio))))
    level = 20.0 * math.log10(rms) if rms > 0 else -math.inf
    if level < silence_dbfs:
        return f"silent audio: RMS {level:.1f} dBFS is below {silence_dbfs:g} dBFS"
    block = AUDIO_SAMPLE_RATE // 10
    if len(audio) >= 2 * block:
        power = np.mean(audio[: len(audio) // block * block].reshape(-1, block) ** 2, axis=1)
        levels = 10.0 * np.log10(power + 1e-20)
        if float(levels.max() - np.percentile(levels, 10)) < CONSTANT_DB:
            return f"constant audio: its 100-ms level varies by less than {CONSTANT_DB:g} dB, so it has no onsets"
    return None


def _heatmap(r: np.ndarray, motion: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each cell's positive correlation weighted by its motion's spread relative to the most active cell.

    Correlation alone is scale-free: a cell that catches only the faint edge of
    the sounding object correlates as well as the object's centre. Weighting by
    the cell's standard deviation (over the strongest cell's) makes the map the
    covariance with the audio, normalised to [0, 1], so it peaks where the most
    synchronous motion is.
    """
    spread = motion.std(axis=0)
    out = np.clip(np.nan_to_num(r, nan=0.0), 0.0, 1.0) * spread / max(float(spread.max()), 1e-12)
    return out.reshape(shape)


def _windows(
    audio_env: np.ndarray, motion: np.ndarray | None, lag: int, fps: float, duration: float
) -> tuple[list[float] | None, str | None]:
    """Per-1-s-window correlation at ``lag``, clipped to [0, 1]; one window per whole or >= 0.5 s partial second."""
    count = int(math.floor(duration)) + (1 if duration - math.floor(duration) >= 0.5 else 0)
    if count == 0:
        return None, "clip shorter than 0.5 s: no temporal window"
    if motion is None:
        return None, "audio and motion do not overlap at the scored lag"
    n = len(audio_env)
    times = np.arange(n) / fps
    out = []
    for w in range(count):
        t = np.nonzero((times >= w) & (times < w + 1) & (np.arange(n) + lag >= 0) & (np.arange(n) + lag < n))[0]
        r = pearson(audio_env[t + lag], motion[t, None])[0] if len(t) else np.nan
        out.append(unit(r) if np.isfinite(r) else 0.0)
    return out, None


def _circular_table(audio_env: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Pearson r of the audio envelope circularly shifted by every lag ``L`` (row) with each candidate (column).

    Row ``L`` pairs ``audio_env[(t + L) % n]`` with ``candidates[t]``. A
    circular shift keeps mean and variance, so all rows are one FFT
    cross-correlation. Shifts far from zero cannot be the true alignment, so
    they show how well this audio fits this picture by coincidence (a single
    loud onset landing on any burst of motion, a periodic beat); flat columns
    give 0.
    """
    n = len(audio_env)
    za = (audio_env - audio_env.mean()) / (audio_env.std() + 1e-300)
    spread = candidates.std(axis=0)
    zm = (candidates - candidates.mean(axis=0)) / np.where(spread > 1e-12, spread, np.inf)
    return np.fft.irfft(np.fft.rfft(za, n)[:, None] * np.conj(np.fft.rfft(zm, n, axis=0)), n, axis=0) / n


def _chance(circular: np.ndarray) -> float:
    """The best-region correlation this audio reaches with this picture by chance: the median over shifts >= 2 frames.

    Picking the best of 65 regions inflates a correlation, the more so the
    shorter the clip; this is that inflation, measured on the clip itself.
    """
    n = len(circular)
    rows = circular[2 : n - 1] if n > 4 else circular[1:]
    return float(np.median(rows.max(axis=1))) if len(rows) else 0.0

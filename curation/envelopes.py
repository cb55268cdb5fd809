"""The two envelopes the cpu profile's aligner correlates, on the video frame times.

* audio onset strength: positive spectral flux of a log-compressed mel
  spectrogram of the 16 kHz mono audio, splatted onto the frame times with a
  linear (triangular) kernel so that sub-frame timing survives;
* visual motion energy: mean absolute difference of consecutive downscaled
  grayscale frames, per cell of a coarse grid and over the whole frame.

Both are computed in float64 with numpy's own sums, never BLAS or complex
``abs``, whose last bits depend on the CPU: the same clip gives the same
envelopes on every machine (tests/test_determinism.py).
"""

from __future__ import annotations

import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE

WINDOW = 256  # 16 ms analysis window at 16 kHz: short, so onsets are not smeared
HOP = 80  # 5 ms hop: 8 envelope samples per 25 fps frame
_N_MELS = 32
_FLOOR = 10.0  # band compression knee, in multiples of the band's median power
_LOWRES = 96  # longest side of the frames the motion is measured on, pixels
_GRAY = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights


def audio_onset_envelope(
    audio: np.ndarray, fps: float, n_frames: int, sample_rate: int = AUDIO_SAMPLE_RATE
) -> np.ndarray:
    """Onset strength on the video frame times: positive log-mel spectral flux, linearly splatted onto frames.

    Each band is compressed as ``log(1 + power / (10 * its median power))``:
    below ten times its typical level a band is nearly linear and small, so
    its steady level (hum, background noise, the zero padding of a shifted
    clip) and that level's random flicker add little, while rises well above
    it count in decibel-like steps, however loud the clip.
    """
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    env = np.zeros(n_frames, dtype=np.float64)
    if len(audio) < WINDOW + HOP or n_frames == 0:
        return env
    n_hops = 1 + (len(audio) - WINDOW) // HOP
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n_hops)[:, None]
    bins = np.fft.rfft(audio[idx] * np.hanning(WINDOW), axis=1)
    spec = bins.real**2 + bins.imag**2  # not np.abs(bins) ** 2: complex abs is CPU-dependent in its last bit
    mel = _mel_bands(spec, sample_rate)
    floor = _FLOOR * np.median(mel, axis=0) + 1e-10
    logmel = np.log(1.0 + mel / floor)
    flux = np.maximum(np.diff(logmel, axis=0), 0.0).mean(axis=1)
    # flux[j] compares analysis frames j and j + 1 and is dated at the centre of frame j + 1:
    # a click's flux peak then lands within 2 ms of the click (measured at 1000 "fps").
    times = (HOP * (np.arange(len(flux)) + 1) + WINDOW / 2) / sample_rate
    pos = times * fps
    k = np.floor(pos).astype(np.int64)
    frac = pos - k
    for index, weight in ((k, 1.0 - frac), (k + 1, frac)):
        ok = (index >= 0) & (index < n_frames)
        env += np.bincount(index[ok], weights=(flux * weight)[ok], minlength=n_frames)[:n_frames]
    return env


def motion_envelopes(frames: np.ndarray, grid: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell and whole-frame motion energy: mean absolute difference of consecutive gray frames (0-255).

    Frames are subsampled to about `_LOWRES` pixels on the longest side before
    anything else, which keeps a 10-s 384-px clip to a few milliseconds. Row
    ``k`` is the change from frame ``k - 1`` to frame ``k`` (row 0 repeats row
    1), so a change first shown in frame ``k`` is dated at that frame's time.
    Returns ``(cells (T, grid_rows, grid_cols), whole (T,))``.
    """
    frames = np.asarray(frames)
    n, height, width = frames.shape[:3]
    step = max(1, max(height, width) // _LOWRES)
    small = frames[:, ::step, ::step]
    gray = _luma(small) if small.ndim == 4 else small.astype(np.float64)
    rows, cols = min(grid, gray.shape[1]), min(grid, gray.shape[2])
    if n < 2:
        return np.zeros((n, rows, cols)), np.zeros(n)
    diff = np.abs(np.diff(gray, axis=0))
    y_edges = np.linspace(0, gray.shape[1], rows + 1).round().astype(int)
    x_edges = np.linspace(0, gray.shape[2], cols + 1).round().astype(int)
    sums = np.add.reduceat(np.add.reduceat(diff, y_edges[:-1], axis=1), x_edges[:-1], axis=2)
    area = np.diff(y_edges)[:, None] * np.diff(x_edges)[None, :]
    cells = sums / area
    whole = sums.sum(axis=(1, 2)) / area.sum()
    cells = np.concatenate([cells[:1], cells], axis=0)
    whole = np.concatenate([whole[:1], whole])
    return cells, whole


def _luma(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB ``(..., 3)`` frames in float64, as plain products and sums (no BLAS, see `_mel_bands`)."""
    red, green, blue = (frames[..., c].astype(np.float64) for c in range(3))
    return _GRAY[0] * red + _GRAY[1] * green + _GRAY[2] * blue


_MEL_CACHE: dict[int, list[tuple[slice, np.ndarray]]] = {}


def _mel_bands(power: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(frames, _N_MELS)`` band powers: each triangular filter summed over its own bins, without BLAS.

    A matrix product would hand the sums to BLAS, whose kernel (and so the
    last bits of every sum) depends on the CPU; numpy's own sums have a fixed
    order, which keeps the scores identical on every machine.
    """
    return np.stack([np.sum(power[:, bins] * weights, axis=1) for bins, weights in _mel_filters(sample_rate)], axis=1)


def _mel_filters(sample_rate: int) -> list[tuple[slice, np.ndarray]]:
    """Triangular mel filters from 50 Hz to Nyquist, each as (its bins, its weights on them)."""
    if sample_rate not in _MEL_CACHE:

        def mel(f: np.ndarray) -> np.ndarray:
            return 2595.0 * np.log10(1.0 + f / 700.0)

        def hz(m: np.ndarray) -> np.ndarray:
            return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

        edges = hz(np.linspace(mel(np.array(50.0)), mel(np.array(sample_rate / 2)), _N_MELS + 2))
        freqs = np.fft.rfftfreq(WINDOW, 1.0 / sample_rate)
        lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        weights = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
        filters = []
        for row in weights:
            nonzero = np.flatnonzero(row)
            bins = slice(int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else slice(0, 0)
            filters.append((bins, row[bins]))
        _MEL_CACHE[sample_rate] = filters
    return _MEL_CACHE[sample_rate]

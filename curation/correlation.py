"""Correlations between an audio envelope and visual candidates on the video frame times, and what the cpu
profile's aligners make of a correlation curve: clipping, chance, the peak's margin.

One implementation for every aligner that compares envelopes on the frame times (`curation.signal_aligner`'s
motion cells, `curation.lipsync`'s lips against the voice, `curation.models.person`'s hand motion): the same
overlap rule at every lag, and numpy's own sums, never BLAS (``@``, ``dot``), whose last bits depend on the CPU, so
the same clip gives the same correlations on every machine (tests/test_determinism.py); and one meaning of a
score and a confidence across them.
"""

from __future__ import annotations

import numpy as np


def overlap(audio_env: np.ndarray, visual: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """``audio_env[t + lag]`` and ``visual[t]`` over the frames ``t`` where both exist (positive ``lag``: audio
    late); empty where ``|lag|`` is the series' length or more."""
    n = len(audio_env)
    if abs(lag) >= n:
        return audio_env[:0], visual[:0]
    if lag >= 0:
        return audio_env[lag:], visual[: n - lag]
    return audio_env[: n + lag], visual[-lag:]


def pearson_at_lag(audio_env: np.ndarray, candidates: np.ndarray, lag: int) -> np.ndarray:
    """Pearson r of ``audio_env[t + lag]`` with each column of ``candidates[t]`` over their `overlap`; NaN if flat."""
    return pearson(*overlap(audio_env, candidates, lag))


def lag_table(audio_env: np.ndarray, candidates: np.ndarray, max_lag: int) -> np.ndarray:
    """``(2 * max_lag + 1, columns)``: row ``i`` is `pearson_at_lag` at lag ``i - max_lag`` frames."""
    return np.stack([pearson_at_lag(audio_env, candidates, lag) for lag in range(-max_lag, max_lag + 1)])


def pearson(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Pearson r of vector ``a`` with each column of ``m``; NaN where either side has no variance."""
    if len(a) < 3:
        return np.full(m.shape[1], np.nan)
    ac = a - a.mean()
    mc = m - m.mean(axis=0)
    den = np.sqrt(np.sum(ac * ac) * np.sum(mc * mc, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sum(ac[:, None] * mc, axis=0) / den
    tiny = 1e-12 * max(1.0, float(np.abs(a).max()) ** 2)
    return np.where(den > tiny, r, np.nan)


def unit(value: float) -> float:
    """Clip to [0, 1] as a plain float: a negative correlation is no evidence of alignment."""
    return float(min(1.0, max(0.0, value)))


def above_chance(raw: float, chance: float) -> float:
    """``(raw - chance) / (1 - chance)`` clipped to [0, 1]: 0 for a coincidental fit, 1 for a perfect one."""
    chance = max(0.0, chance)
    return unit((raw - chance) / (1.0 - chance)) if chance < 1.0 else 0.0


def rival(curve: np.ndarray, i: int, null: np.ndarray) -> float:
    """The best correlation that competes with the peak ``curve[i]``: outside its lobe, or at an impossible lag.

    The lobe is the run of lags around the peak down to the first local
    minimum on each side (and at least one frame either way), so the peak's
    own shoulders are not counted as rivals. Negative rivals count as 0.
    """
    lo, hi = i, i
    while lo > 0 and curve[lo - 1] <= curve[lo]:
        lo -= 1
    while hi < len(curve) - 1 and curve[hi + 1] <= curve[hi]:
        hi += 1
    lo, hi = min(lo, i - 1), max(hi, i + 1)
    outside = np.concatenate([curve[: max(lo, 0)], curve[hi + 1 :], null])
    outside = outside[np.isfinite(outside)]
    return max(0.0, float(outside.max())) if len(outside) else 0.0


def peak_confidence(curve: np.ndarray, i: int, null: np.ndarray) -> float:
    """The peak's margin over its `rival`, as a share of the headroom above that rival: 0 for a tie, 1 for unique."""
    best = rival(curve, i, null)
    return unit((float(curve[i]) - best) / (1.0 - best)) if best < 1.0 else 0.0

"""Pearson correlations between an audio envelope and visual candidates, at one lag or over a range of lags.

One implementation for every aligner that compares envelopes on the video
frame times (`curation.signal_aligner`'s motion cells, `curation.models.person`'s
hand motion): the same overlap rule at every lag, and numpy's own sums, never
BLAS (``@``, ``dot``), whose last bits depend on the CPU, so the same clip gives
the same correlations on every machine (tests/test_determinism.py).
"""

from __future__ import annotations

import numpy as np


def pearson_at_lag(audio_env: np.ndarray, candidates: np.ndarray, lag: int) -> np.ndarray:
    """Pearson r of ``audio_env[t + lag]`` with each column of ``candidates[t]`` over their overlap; NaN if flat."""
    n = len(audio_env)
    if lag >= 0:
        a, m = audio_env[lag:], candidates[: n - lag]
    else:
        a, m = audio_env[: n + lag], candidates[-lag:]
    return pearson(a, m)


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

"""What the cpu profile's aligners share once they have a correlation curve: clipping, chance, the peak's margin.

`curation.signal_aligner` (onsets against motion) and `curation.lipsync` (the
voice against the lips) both search a Pearson correlation over lags; these are
the steps that turn such a curve into the `curation.roles.Analysis` numbers,
kept in one place so the two profiles' confidences and scores mean the same.
"""

from __future__ import annotations

import numpy as np


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

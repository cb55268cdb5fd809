"""Clips, seconds and pass rates of the release as the overview shows them: the one place the site chooses a source.

Kept in one function so that it can give way to the release's shared facts (one precedence for the card, the
Croissant record, ``acav1m info`` and the site) without touching the pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acav1m_hf.schema import SPLITS
from acav1m_hf.site.index import SCORES, Index


@dataclass(frozen=True)
class ReleaseStats:
    splits: dict[str, tuple[int, float]]
    """Clips and seconds per split, for the splits that have clips."""
    pass_rates: dict[str, float | None]
    """Share of scored clips passing each filter (None: not computed)."""


def release_stats(report: Mapping[str, Any], index: Index) -> ReleaseStats:
    """The report's split figures and pass rates where it gives them, else the index's."""
    report_splits = report.get("splits")
    splits = {}
    for split in SPLITS:
        entry = report_splits.get(split) if isinstance(report_splits, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("clips"), int):
            splits[split] = (entry["clips"], float(entry.get("seconds") or 0.0))
        elif index.split_rows[split]:
            splits[split] = (index.split_rows[split], index.split_seconds[split])
    rates = report.get("pass_rates") if isinstance(report.get("pass_rates"), dict) else {}
    pass_rates = {}
    for score in SCORES:
        hist = index.histograms[score]
        pass_rates[score] = rates.get(score) if rates else (hist.passed / hist.n if hist.n else None)
    return ReleaseStats(splits, pass_rates)

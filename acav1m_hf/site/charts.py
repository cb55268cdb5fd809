"""Geometry of the distributions page's SVG charts: numbers only; templates/charts.html draws them.

Bins are counted in Python (`index.Histogram`) and drawn as inline SVG, so the page needs no JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from acav1m_hf.site.index import HIST_BINS, Histogram


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str
    """CSS class: ``pass`` (bin at or above the threshold), ``flag`` (below it) or ``mixed`` (holds it)."""
    low: float
    high: float
    count: int


@dataclass(frozen=True)
class HistogramChart:
    name: str
    width: int
    height: int
    left: int
    right: int
    """x of the plot's right edge."""
    baseline: int
    """y of the x axis."""
    top: int
    bars: list[Bar]
    x_ticks: list[tuple[float, float]]
    """(x, score) of each labelled tick."""
    y_ticks: list[tuple[float, int]]
    """(y, clips) of each grid line."""
    threshold: float | None
    threshold_x: float | None


def histogram_chart(hist: Histogram, name: str) -> HistogramChart:
    width, height, left, bottom, top = 560, 220, 48, 28, 12
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = max(hist.counts) or 1
    bar_w = plot_w / HIST_BINS
    threshold = hist.threshold
    bars = []
    for b, count in enumerate(hist.counts):
        low, high = b / HIST_BINS, (b + 1) / HIST_BINS
        h = plot_h * count / peak
        if threshold is not None and low >= threshold:
            kind = "pass"
        elif threshold is not None and high <= threshold:
            kind = "flag"
        else:
            kind = "mixed"
        bars.append(Bar(left + b * bar_w + 1, top + plot_h - h, bar_w - 2, h, kind, low, high, count))
    return HistogramChart(
        name=name,
        width=width,
        height=height,
        left=left,
        right=left + plot_w,
        baseline=top + plot_h,
        top=top,
        bars=bars,
        x_ticks=[(left + plot_w * t / 10, t / 10) for t in range(0, 11, 2)],
        y_ticks=[(top + plot_h * (1 - frac), round(peak * frac)) for frac in (0.5, 1.0)],
        threshold=threshold,
        threshold_x=None if threshold is None else left + plot_w * min(max(threshold, 0.0), 1.0),
    )


@dataclass(frozen=True)
class LabelRow:
    label_id: int
    name: str
    y: int
    width: float
    count: int


@dataclass(frozen=True)
class LabelsChart:
    """Horizontal bars, one per label, each a link to the browser filtered on it."""

    width: int
    height: int
    label_width: int
    row_height: int
    rows: list[LabelRow]


def labels_chart(counts: Sequence[tuple[str, int]], ids: Mapping[str, int]) -> LabelsChart:
    row_h, label_w, width = 22, 180, 640
    peak = max(n for _, n in counts) or 1
    rows = [
        LabelRow(ids[name], name, i * row_h, (width - label_w - 70) * n / peak, n) for i, (name, n) in enumerate(counts)
    ]
    return LabelsChart(width, len(counts) * row_h + 4, label_w, row_h, rows)

"""``acav1m info``: a release at a glance, from its report and Parquet index (no tar is opened)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from acav1m_hf import release

SCORES = (
    "alignment.language.score",
    "alignment.instance.score",
    "alignment.temporal.score",
    "alignment.sync.confidence",
)


def histogram(values: list[float], bins: int = 10, width: int = 30) -> list[str]:
    """Text histogram over [0, 1]: one line per bin with a bar and the count."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    top = max(int(counts.max()), 1)
    return [
        f"  {lo:4.2f}-{hi:4.2f} {'#' * round(width * c / top):<{width}} {c}"
        for lo, hi, c in zip(edges, edges[1:], counts, strict=False)
    ]


def describe_release(root: str | Path) -> str:
    """The text ``acav1m info`` prints: counts, reasons, hours, pass rates and score histograms."""
    import pyarrow.parquet as pq

    root = Path(root)
    report = json.loads((root / release.REPORT).read_text())
    counts = report["counts"]
    lines = [
        f"release {root}",
        f"inputs: {counts['inputs']['kept']} kept, {counts['inputs']['rejected']} rejected of {counts['inputs']['total']}",
        f"clips:  {counts['clips']['kept']} kept, {counts['clips']['rejected']} rejected of {counts['clips']['total']}",
    ]
    for kind in ("inputs", "clips"):
        if report["reasons"][kind]:
            lines.append(
                f"rejected {kind} by reason: " + ", ".join(f"{r} {n}" for r, n in report["reasons"][kind].items())
            )
    for split, stats in report["splits"].items():
        lines.append(
            f"{split:>10}: {stats['clips']} clips, {stats['seconds'] / 3600:.4f} h, {stats['shards']} shard(s), {stats['bytes'] / 1e6:.1f} MB"
        )
    rates = ", ".join(f"{k} {'n/a' if v is None else f'{v:.0%}'}" for k, v in report["pass_rates"].items())
    lines.append(f"filter pass rates (after re-alignment, {report['realigned']} re-aligned): {rates}")
    rows = [
        r
        for split in report["splits"]
        for r in pq.read_table(root / release.index_name(split), columns=list(SCORES)).to_pylist()
    ]
    for column in SCORES:
        values = [r[column] for r in rows if r[column] is not None]
        lines.append(f"{column}: {len(values)} of {len(rows)} clips scored")
        if values:
            lines += histogram(values)
    return "\n".join(lines)

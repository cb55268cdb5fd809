"""``acav1m info``: a release at a glance, from its `ReleaseFacts` (report and Parquet index; no tar is opened)."""

from __future__ import annotations

from pathlib import Path

from acav1m_hf.facts import FILTERS, ReleaseFacts, ScoreFacts


def histogram(score: ScoreFacts, width: int = 30) -> list[str]:
    """Text histogram of a score over [0, 1]: one line per bin with a bar and the count."""
    top = max(max(score.bins), 1)
    n = len(score.bins)
    return [
        f"  {i / n:4.2f}-{(i + 1) / n:4.2f} {'#' * round(width * c / top):<{width}} {c}"
        for i, c in enumerate(score.bins)
    ]


def describe_release(root: str | Path) -> str:
    """The text ``acav1m info`` prints: counts, reasons, hours, pass rates and score histograms."""
    facts = ReleaseFacts.read(root, checksums=False)
    curation = facts.curation
    lines = [f"release {root}"]
    for kind, label in (("inputs", "inputs:"), ("clips", "clips: ")):
        if kind in curation.counts:
            c = curation.counts[kind]
            lines.append(f"{label} {c.get('kept')} kept, {c.get('rejected')} rejected of {c.get('total')}")
    for kind, by_reason in curation.reasons.items():
        if by_reason:
            lines.append(f"rejected {kind} by reason: " + ", ".join(f"{r} {n}" for r, n in by_reason.items()))
    for split in facts.with_shards.values():
        hours = "unknown" if split.seconds is None else f"{split.seconds / 3600:.4f}"
        clips = "unknown" if split.clips is None else split.clips
        lines.append(
            f"{split.name:>10}: {clips} clips, {hours} h, {len(split.shards)} shard(s), {split.bytes / 1e6:.1f} MB"
        )
    if curation.pass_rates:
        rates = ", ".join(f"{name} {curation.rate(name)}" for name in FILTERS)
        lines.append(f"filter pass rates (after re-alignment, {curation.realigned} re-aligned): {rates}")
    for column, score in facts.scores.items():
        lines.append(f"{column}: {score.scored} of {score.rows} clips scored")
        if score.scored:
            lines += histogram(score)
    return "\n".join(lines)

"""The alignment benchmark's records and figures (`curation.evaluate` fills them): JSON and a Markdown table.

Every figure is a share (count of total) or an AUROC, so it lies in [0, 1], or
is None when nothing could be counted; counts are kept beside each share so a
reader can see how little a figure rests on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

IN_SYNC, CONTENT_SHIFT, CONTAINER_SHIFT, SWAPPED = "in_sync", "content_shift", "container_shift", "swapped"
SHIFTS = (CONTENT_SHIFT, CONTAINER_SHIFT)
VARIANTS = (IN_SYNC, *SHIFTS, SWAPPED)
CLOSE, NEAR = 0.040, 0.200
"""Offset tolerances, seconds: 1 frame at 25 fps (SyncNet's LRS2 count) and one Synchformer class (0.2 s)."""
UNKNOWN_KIND = "unknown"
SHARES = (
    "within_close",
    "within_near",
    "confident",
    "confident_within_close",
    "confident_within_near",
    "matched_above_swapped",
    "instance_null",
    "offset_null",
)
"""The `Figures` that are shares (a count over a total), in the order the report lists them."""


@dataclass(frozen=True)
class VariantOutcome:
    """What the profile's model stages made of one variant, beside its known truth."""

    clip: str
    """The in-sync clip it was made from: ``{input as written}#{clip index}``."""
    kind: str
    variant: str
    """One of `VARIANTS`."""
    nominal: float | None
    """The requested audio delay, seconds (0 for in-sync, None for a swap)."""
    truth: float | None
    """The audio's true delay against the picture, seconds: exact for a content shift, measured for a container shift
    (None when it could not be measured, with ``truth_reason``; always None for a swap)."""
    truth_reason: str | None
    partner: str | None
    """For a swap: the clip whose soundtrack it carries."""
    instance: float | None
    instance_reason: str | None
    temporal: float | None
    offset: float | None
    """The profile's estimated sync offset on the variant as decoded."""
    confidence: float | None
    offset_reason: str | None
    realigned: bool
    flags: list[str]
    passed_before: bool
    """Passed every filter before re-alignment (a re-aligned clip had failed, or it would not have been re-aligned)."""
    passed: bool
    """Passed every filter after re-alignment, as curate decides."""
    recording: str = ""
    """The first clip (by name) of the clip's recording: clips whose soundtracks are the same recording (another
    container, an excerpt) share it; a calibration's out-of-sample figures leave one recording out at a time."""
    raw_instance: float | None = None
    """The aligner's raw instance value on the variant as decoded (before re-alignment and calibration)."""
    raw_windows: list[float] | None = None
    """Its per-1-s window values as decoded, before calibration."""
    cue: str | None = None
    """What the aligner compared on the variant as decoded (`curation.roles.Analysis.cue`): whose calibration map it
    is fitted into."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantOutcome:
        return cls(**data)


@dataclass(frozen=True)
class Exclusion:
    """An input, clip or variant left out of the figures, and why (never dropped silently)."""

    input: str
    reason: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Exclusion:
        return cls(**data)


@dataclass(frozen=True)
class Share:
    """``count`` of ``total``; ``value`` is their ratio, None when ``total`` is 0."""

    count: int
    total: int

    @property
    def value(self) -> float | None:
        return self.count / self.total if self.total else None

    @classmethod
    def of(cls, flags: list[bool]) -> Share:
        return cls(sum(flags), len(flags))

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "total": self.total, "value": self.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Share:
        return cls(data["count"], data["total"])

    def cell(self) -> str:
        return "-" if self.value is None else f"{self.value:.2f} ({self.count}/{self.total})"


@dataclass(frozen=True)
class Figures:
    """The benchmark's figures over one group of clips (all of them, or one content kind)."""

    clips: int
    within_close: Share
    """Shifted variants (with a truth) whose offset is within `CLOSE` of it; a null offset is a miss."""
    within_near: Share
    confident: Share
    """Shifted variants whose sync confidence is at least the profile's re-alignment confidence."""
    confident_within_close: Share
    confident_within_near: Share
    auroc: float | None
    """Of the instance score, in-sync clips (positives) against swapped ones (negatives); ties count half."""
    auroc_counts: tuple[int, int]
    """(in-sync, swapped) clips with an instance score, that the AUROC is over."""
    raw_auroc: float | None
    """The same over the aligner's raw instance values as decoded (`VariantOutcome.raw_instance`): what a
    calibration is fitted on, whichever calibration the scores were read with."""
    raw_auroc_counts: tuple[int, int]
    matched_above_swapped: Share
    """Pairs (a clip, the same frames with another soundtrack), both scored, where the clip's own scores higher."""
    unscored_pairs: int
    passed: dict[str, Share]
    """Pass rates at the configured thresholds: ``in_sync``, ``shifted_before`` / ``shifted_after`` re-alignment,
    ``swapped``."""
    instance_null: Share
    offset_null: Share
    null_reasons: dict[str, int]
    """Reason → variants with a null instance score or offset (each reason counted once per variant and output)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("within_close", "within_near", "confident", "confident_within_close", "confident_within_near"):
            data[name] = getattr(self, name).to_dict()
        data["matched_above_swapped"] = self.matched_above_swapped.to_dict()
        data["instance_null"], data["offset_null"] = self.instance_null.to_dict(), self.offset_null.to_dict()
        data["passed"] = {name: share.to_dict() for name, share in self.passed.items()}
        data["auroc_counts"], data["raw_auroc_counts"] = list(self.auroc_counts), list(self.raw_auroc_counts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        shares = {name: Share.from_dict(data[name]) for name in SHARES}
        return cls(
            clips=data["clips"],
            auroc=data["auroc"],
            auroc_counts=tuple(data["auroc_counts"]),
            raw_auroc=data.get("raw_auroc"),
            raw_auroc_counts=tuple(data.get("raw_auroc_counts", (0, 0))),
            unscored_pairs=data["unscored_pairs"],
            passed={name: Share.from_dict(share) for name, share in data["passed"].items()},
            null_reasons=data["null_reasons"],
            **shares,
        )


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """Mann-Whitney AUROC: the chance that a positive scores above a negative (ties count half); None if either is empty."""
    if not positives or not negatives:
        return None
    pos, neg = np.asarray(positives, np.float64)[:, None], np.asarray(negatives, np.float64)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def figures(outcomes: list[VariantOutcome], min_confidence: float) -> Figures:
    """The figures over ``outcomes`` (the variants of one group of clips)."""
    shifted = [o for o in outcomes if o.variant in SHIFTS and o.truth is not None]
    confident = [o for o in shifted if (o.confidence or 0.0) >= min_confidence]
    in_sync = [o for o in outcomes if o.variant == IN_SYNC]
    swaps = [o for o in outcomes if o.variant == SWAPPED]
    own = {o.clip: o.instance for o in in_sync}
    pairs = [(own.get(o.clip), o.instance) for o in swaps]
    scored = [(a, b) for a, b in pairs if a is not None and b is not None]
    positives = [o.instance for o in in_sync if o.instance is not None]
    negatives = [o.instance for o in swaps if o.instance is not None]
    raw_positives = [o.raw_instance for o in in_sync if o.raw_instance is not None]
    raw_negatives = [o.raw_instance for o in swaps if o.raw_instance is not None]
    return Figures(
        clips=len(in_sync),
        within_close=Share.of([_within(o, CLOSE) for o in shifted]),
        within_near=Share.of([_within(o, NEAR) for o in shifted]),
        confident=Share(len(confident), len(shifted)),
        confident_within_close=Share.of([_within(o, CLOSE) for o in confident]),
        confident_within_near=Share.of([_within(o, NEAR) for o in confident]),
        auroc=auroc(positives, negatives),
        auroc_counts=(len(positives), len(negatives)),
        raw_auroc=auroc(raw_positives, raw_negatives),  # type: ignore[arg-type]
        raw_auroc_counts=(len(raw_positives), len(raw_negatives)),
        matched_above_swapped=Share.of([a > b for a, b in scored]),
        unscored_pairs=len(pairs) - len(scored),
        passed={
            "in_sync": Share.of([o.passed for o in in_sync]),
            "shifted_before": Share.of([o.passed_before for o in shifted]),
            "shifted_after": Share.of([o.passed for o in shifted]),
            "swapped": Share.of([o.passed for o in swaps]),
        },
        instance_null=Share.of([o.instance is None for o in outcomes]),
        offset_null=Share.of([o.offset is None for o in outcomes]),
        null_reasons=_null_reasons(outcomes),
    )


def _within(outcome: VariantOutcome, tolerance: float) -> bool:
    return outcome.offset is not None and abs(outcome.offset - outcome.truth) <= tolerance + 1e-9  # type: ignore[operator]


def _null_reasons(outcomes: list[VariantOutcome]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for o in outcomes:
        reasons = set()
        if o.instance is None:
            reasons.add(f"instance: {o.instance_reason or 'not computed'}")
        if o.offset is None:
            reasons.add(f"offset: {o.offset_reason or 'not estimated'}")
        counts.update(reasons)
    return dict(sorted(counts.items()))


@dataclass
class AlignmentReport:
    """The whole benchmark: settings, every variant's outcome, what was left out, and the figures per group."""

    profile: str
    models: dict[str, str | None]
    config: dict[str, Any]
    offsets: list[float]
    inputs: list[str]
    variants: list[VariantOutcome]
    excluded: list[Exclusion]
    figures: dict[str, Figures]
    """``all`` and one entry per content kind."""
    unused_kinds: list[str] = field(default_factory=list)
    """Rows of the kinds manifest that named no evaluated input."""
    calibration: dict[str, Any] = field(default_factory=dict)
    """The calibration the scores were read with (`curation.calibration.calibration_state`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "models": self.models,
            "calibration": self.calibration,
            "config": self.config,
            "offsets": self.offsets,
            "inputs": self.inputs,
            "figures": {group: f.to_dict() for group, f in self.figures.items()},
            "excluded": [e.to_dict() for e in self.excluded],
            "unused_kinds": self.unused_kinds,
            "variants": [v.to_dict() for v in self.variants],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignmentReport:
        return cls(
            profile=data["profile"],
            models=data["models"],
            config=data["config"],
            offsets=data["offsets"],
            inputs=data["inputs"],
            variants=[VariantOutcome.from_dict(v) for v in data["variants"]],
            excluded=[Exclusion.from_dict(e) for e in data["excluded"]],
            figures={group: Figures.from_dict(f) for group, f in data["figures"].items()},
            unused_kinds=data.get("unused_kinds", []),
            calibration=data.get("calibration", {}),
        )


_ROWS: list[tuple[str, Any]] = [
    ("in-sync clips", lambda f: str(f.clips)),
    ("shifted: offset within ±40 ms", lambda f: f.within_close.cell()),
    ("shifted: offset within ±0.2 s", lambda f: f.within_near.cell()),
    ("shifted: confident (confidence ≥ threshold)", lambda f: f.confident.cell()),
    ("confident shifted: within ±40 ms", lambda f: f.confident_within_close.cell()),
    ("confident shifted: within ±0.2 s", lambda f: f.confident_within_near.cell()),
    (
        "instance AUROC, in-sync vs swapped",
        lambda f: "-" if f.auroc is None else f"{f.auroc:.2f} ({f.auroc_counts[0]} vs {f.auroc_counts[1]})",
    ),
    (
        "raw instance AUROC (as decoded, uncalibrated)",
        lambda f: (
            "-" if f.raw_auroc is None else f"{f.raw_auroc:.2f} ({f.raw_auroc_counts[0]} vs {f.raw_auroc_counts[1]})"
        ),
    ),
    ("own soundtrack above swapped (pairs)", lambda f: f.matched_above_swapped.cell()),
    ("pass: in-sync", lambda f: f.passed["in_sync"].cell()),
    ("pass: shifted, before re-alignment", lambda f: f.passed["shifted_before"].cell()),
    ("pass: shifted, after re-alignment", lambda f: f.passed["shifted_after"].cell()),
    ("pass: swapped", lambda f: f.passed["swapped"].cell()),
    ("null instance score (all variants)", lambda f: f.instance_null.cell()),
    ("null offset (all variants)", lambda f: f.offset_null.cell()),
]


def to_markdown(report: AlignmentReport) -> str:
    """The figures as a Markdown table (groups as columns), then the null reasons and the exclusions."""
    groups = list(report.figures)
    state = report.calibration
    scores = (
        f"calibrated with `{state.get('file')}` (fitted {state.get('fitted')})"
        if state.get("calibrated")
        else "uncalibrated (the aligner's own normalisation: 0.5 is not chance)"
    )
    lines = [
        f"# Alignment benchmark: profile `{report.profile}`",
        "",
        f"Aligner `{state.get('aligner', report.models.get('aligner'))}`, scores {scores}.",
        "",
        f"{len(report.inputs)} inputs; audio delays {', '.join(f'{o:+g}' for o in report.offsets)} s, each as a content "
        "shift (exact) and a container shift (measured); one swapped soundtrack per clip. Cells: share (count/total).",
        "",
        "| figure | " + " | ".join(groups) + " |",
        "|---|" + "---:|" * len(groups),
    ]
    lines += [f"| {name} | " + " | ".join(cell(report.figures[g]) for g in groups) + " |" for name, cell in _ROWS]
    lines += ["", "## Null values, by reason (all clips)", ""]
    reasons = report.figures["all"].null_reasons if "all" in report.figures else {}
    lines += [f"- {count} × {reason}" for reason, count in reasons.items()] or ["- none"]
    lines += ["", "## Left out", ""]
    lines += [f"- `{e.input}`: {e.reason}{f' ({e.detail})' if e.detail else ''}" for e in report.excluded] or ["- none"]
    if report.unused_kinds:
        lines += ["", "Kinds manifest rows that named no input: " + ", ".join(f"`{k}`" for k in report.unused_kinds)]
    return "\n".join(lines) + "\n"

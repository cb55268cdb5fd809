"""Planning: which split each input goes to, and how inputs are grouped into units of work (pure, no I/O).

The plan is deterministic, so a unit is what an engine schedules, retries and
resumes; its fingerprint is what a resumed run must share with the run it
continues.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from acav1m_hf import strict_json
from acav1m_hf.schema import SCHEMA_VERSION, SPLITS
from curation import __version__
from curation.calibration import calibration_state
from curation.config import CurationConfig
from curation.inputs import InputProblem
from curation.profiles import aligner_name, profile_settings
from curation.records import InputItem


@dataclass(frozen=True)
class Unit:
    """A split's ``index``-th group of inputs: what an engine schedules, retries and resumes."""

    split: str
    index: int
    items: tuple[InputItem, ...]

    @property
    def name(self) -> str:
        return unit_name(self.split, self.index)


def unit_name(split: str, index: int) -> str:
    """The name of a split's ``index``-th unit: its records and parts start with it."""
    return f"{split}-u{index:05d}"


def split_of(video_id: str, fractions: tuple[float, float, float]) -> str:
    """Split by a hash of the source video id, so that clips of one video never cross splits."""
    u = int.from_bytes(hashlib.sha256(video_id.encode()).digest()[:8], "big") / 2**64
    cumulative = 0.0
    for split, fraction in zip(SPLITS, fractions, strict=True):
        cumulative += fraction
        if u < cumulative:
            return split
    return SPLITS[-1]


def plan(items: list[InputItem], config: CurationConfig) -> list[Unit]:
    """Group items per split, in input order, into units of ``config.inputs_per_unit``."""
    per_split: dict[str, list[InputItem]] = {s: [] for s in SPLITS}
    for item in items:
        per_split[split_of(item.video_id, config.split_fractions)].append(item)
    size = config.inputs_per_unit
    return [
        Unit(split, i // size, tuple(group[i : i + size]))
        for split, group in per_split.items()
        for i in range(0, len(group), size)
    ]


def settings(config: CurationConfig) -> dict[str, Any]:
    """The settings that decide the output besides the inputs, under the ``report.json`` keys that record them: the
    fingerprint's head, and what ``acav1m extend`` compares with the release it extends."""
    return {
        "acav1m_version": __version__,
        "schema": SCHEMA_VERSION,
        "config": config.to_dict(),
        "profile_settings": profile_settings(config),
        "calibration": calibration_state(aligner_name(config), config),
    }


def fingerprint(units: list[Unit], problems: list[InputProblem], config: CurationConfig) -> str:
    """Hash of everything that decides the output: a resumed run must have the same one.

    Inputs count as the user wrote them (`InputItem.recorded`), not as resolved on this machine, so that the same
    command gives the same ``report.json`` from any checkout or working directory.
    """
    digest = hashlib.sha256()
    recorded = settings(config)
    head = {
        "config": recorded["config"],
        "profile": recorded["profile_settings"],
        "version": recorded["acav1m_version"],
        "schema": recorded["schema"],
        "calibration": recorded["calibration"],
    }
    digest.update(strict_json.dumps(head, sort_keys=True, default=str).encode())
    for unit in units:  # streamed: no second copy of the whole plan as one JSON string
        digest.update(
            strict_json.dumps([unit.name, [_as_planned(i) for i in unit.items]], sort_keys=True, default=str).encode()
        )
    digest.update(strict_json.dumps([asdict(p) for p in problems], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _as_planned(item: InputItem) -> dict[str, object]:
    """``item`` for the fingerprint: its fields, the path as recorded rather than as resolved here."""
    return {**asdict(item), "path": item.recorded, "given": None}

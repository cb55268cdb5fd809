"""Calibrated alignment scores: a logistic (Platt) map from an aligner's raw value to P(matched).

An aligner's own normalisation says nothing about chance: a correlation of 0.5
or a cosine of 0 is not the point where a clip's own soundtrack is as likely
as another clip's. A calibration file, fitted by ``acav1m evaluate-alignment
--fit-calibration`` on in-sync clips (matched) and the same clips with a
swapped soundtrack (mismatched, as many), maps the raw value to the share of
matched clips among those scoring it: 0.5 is "no better than chance between
matched and mismatched", and the default threshold 0.5 keeps a clip only when
it looks more like a matched clip than a mismatched one.

Files are named after the aligner (``curation/calibration/<aligner name>.json``)
and say which aligner they were fitted on, so another aligner's scores are
never mapped with them. An aligner that reads different evidence on different
clips (``cues-v2``: the lips, or onsets against motion; `Analysis.cue`) gets a
pair of maps per cue, fitted on that cue's clips alone: a lip correlation of
0.3 and a motion correlation of 0.3 are different evidence, and one map fitted
on both would mean neither. The aligner-wide pair maps a cue without maps of
its own. `curation.analyse` applies the map once, for every
profile, to the rounded numbers of the aligner (`calibrate`); the raw value is
kept in ``Score.raw`` (and the windows' in ``Analysis.temporal_raw``). Without a
file the scores stay as the aligner normalises them and every release says
they are uncalibrated (`calibration_state`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from curation.config import CurationConfig
from curation.roles import Analysis, Score, round_score

SHIPPED = Path(__file__).with_name("calibration")
"""The calibration files shipped with the package, one per aligner."""
FORMAT = 2
READABLE = (1, 2)
"""Format 1 files have no per-cue maps; they are read as format 2 files with none."""
UNCALIBRATED = "none"
"""``CurationConfig.calibration`` value that turns calibration off (the aligner's own scores)."""
ENVIRONMENT = "ACAV1M_CALIBRATION"
"""A file or ``none``, used when the config names no calibration: the test suite sets ``none``, since its synthetic
clips are not the real footage the shipped files were fitted on (tests that calibrate say so in their config)."""


@dataclass(frozen=True)
class PlattMap:
    """``P(matched | raw) = 1 / (1 + exp(-(slope * raw + intercept)))``.

    ``uninformative`` says why the fit found the raw value no better than chance
    at telling matched from swapped clips out of sample: the score is then no
    value (null, with that reason) rather than 0.5 for every clip, so that a
    filter never passes a clip on evidence its aligner does not have.
    """

    slope: float
    intercept: float
    uninformative: str | None = None

    def __call__(self, raw: float) -> float:
        z = self.slope * raw + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    @property
    def chance_raw(self) -> float | None:
        """The raw value that maps to 0.5; None when the map is flat (the raw value told nothing apart)."""
        return -self.intercept / self.slope if self.slope > 0 else None


@dataclass(frozen=True)
class CueMaps:
    """One cue's instance and window maps; a None map leaves that cue to the aligner-wide one."""

    instance: PlattMap | None
    temporal: PlattMap | None

    def to_dict(self) -> dict[str, Any]:
        return {
            name: None if m is None else _map_dict(m)
            for name, m in (("instance", self.instance), ("temporal", self.temporal))
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> CueMaps:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: needs an object with 'instance' and 'temporal' maps")
        return cls(
            _read_map(data.get("instance"), f"{source}: instance"),
            _read_map(data.get("temporal"), f"{source}: temporal"),
        )


@dataclass(frozen=True)
class Calibration:
    """One aligner's maps and where they came from (`provenance`: clips, counts, date, the fit's figures)."""

    aligner: str
    instance: PlattMap | None
    temporal: PlattMap | None
    """Applied to each 1-s window's value; None leaves the windows as the aligner gives them."""
    provenance: dict[str, Any] = field(default_factory=dict)
    cues: dict[str, CueMaps] = field(default_factory=dict)
    """Per-cue maps (`Analysis.cue`), preferred over ``instance`` and ``temporal`` for that cue's clips."""

    def map_for(self, cue: str | None, name: str) -> tuple[PlattMap | None, str]:
        """The ``instance`` or ``temporal`` map for a clip the aligner read with ``cue``, and whose it is: the cue's
        own where it has one, else the aligner's."""
        own = self.cues.get(cue) if cue is not None else None
        fitted = getattr(own, name) if own is not None else None
        if fitted is not None:
            return fitted, f"{self.aligner}, {cue} cue"
        return getattr(self, name), self.aligner

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "aligner": self.aligner,
            **CueMaps(self.instance, self.temporal).to_dict(),
            "cues": {cue: maps.to_dict() for cue, maps in sorted(self.cues.items())},
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        """A calibration from its JSON object; an error naming ``source`` and what is wrong."""
        if not isinstance(data, dict) or data.get("format") not in READABLE or not isinstance(data.get("aligner"), str):
            raise ValueError(f"{source}: not a calibration file (needs a format of {READABLE} and an 'aligner' name)")
        pooled = CueMaps.from_dict(data, source)
        cues = data.get("cues", {})
        if not isinstance(cues, dict):
            raise ValueError(f"{source}: 'cues' must map each cue's name to its maps")
        return cls(
            data["aligner"],
            pooled.instance,
            pooled.temporal,
            dict(data.get("provenance") or {}),
            {str(cue): CueMaps.from_dict(maps, f"{source}: cue {cue!r}") for cue, maps in cues.items()},
        )

    def write(self, path: str | Path) -> None:
        """Written with sorted keys and a final newline, so that the same fit gives the same bytes."""
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")


def _map_dict(fitted: PlattMap) -> dict[str, Any]:
    return {k: v for k, v in asdict(fitted).items() if k != "uninformative" or v is not None}


def _read_map(value: Any, where: str) -> PlattMap | None:
    """A map from its JSON object (None stays None); an error naming ``where`` and what is wrong."""
    if value is None:
        return None
    try:
        slope, intercept = float(value["slope"]), float(value["intercept"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} needs a numeric 'slope' and 'intercept'") from exc
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope < 0:
        raise ValueError(f"{where} slope must be finite and >= 0, intercept finite")
    reason = value.get("uninformative")
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"{where} 'uninformative' must be a reason (text) or null")
    return PlattMap(slope, intercept, reason)


def read_calibration(path: str | Path) -> Calibration:
    """The calibration in ``path``; an error naming the file when it cannot be read or is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the calibration file: {exc}") from exc
    return Calibration.from_dict(data, source=str(path))


def calibration_path(aligner: str, config: CurationConfig) -> Path | None:
    """The file that calibrates ``aligner``: ``config.calibration``, else `ENVIRONMENT`, else the shipped one, if any."""
    chosen = config.calibration or os.environ.get(ENVIRONMENT) or None
    if chosen == UNCALIBRATED:
        return None
    if chosen:
        return Path(chosen)
    shipped = SHIPPED / f"{aligner}.json"
    return shipped if shipped.is_file() else None


def calibration_for(aligner: str, config: CurationConfig) -> Calibration | None:
    """The calibration of ``aligner`` (None: uncalibrated); a file fitted on another aligner is an error."""
    path = calibration_path(aligner, config)
    if path is None:
        return None
    calibration = _read_cached(str(path.resolve()), _stamp(path))
    if calibration.aligner != aligner:
        raise ValueError(
            f"{path}: fitted on aligner {calibration.aligner!r}, not {aligner!r}: "
            "refit it with acav1m evaluate-alignment --fit-calibration (docs/alignment.md)"
        )
    return calibration


def _stamp(path: Path) -> tuple[int, int] | None:
    """The file's modification time and size: a file rewritten since it was read is read again."""
    try:
        stat = path.stat()
    except OSError:
        return None  # read_calibration names the file and the error
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=16)
def _read_cached(path: str, stamp: tuple[int, int] | None) -> Calibration:
    return read_calibration(path)


def calibration_state(aligner: str, config: CurationConfig) -> dict[str, Any]:
    """What a release records of its scores' calibration (``report.json``, the card, the run's fingerprint)."""
    path = calibration_path(aligner, config)
    calibration = calibration_for(aligner, config)
    if calibration is None:
        return {"aligner": aligner, "calibrated": False, "file": None, "sha256": None, "fitted": None}
    return {
        "aligner": aligner,
        "calibrated": True,
        "file": path.name if path.parent.resolve() == SHIPPED.resolve() else str(path),  # type: ignore[union-attr]
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),  # type: ignore[union-attr]
        "fitted": calibration.provenance.get("date"),
    }


def calibration_maps(aligner: str, config: CurationConfig) -> list[dict[str, Any]]:
    """What the calibration does to each score, per cue (``report.json``'s ``calibration_maps``, which the card names).

    One record per cue of the file and score (``instance``, ``temporal``), then
    the aligner-wide pair (``cue`` None: clips of any other cue), as `calibrate`
    applies them: ``calibrated`` (mapped to P(matched)), ``null`` (the fit found
    the map uninformative; ``reason`` says why) or ``uncalibrated`` (no map: the
    aligner's own scale). It is derived from the file whose hash
    `calibration_state` records, so it stays out of that state, which is part of
    the run's fingerprint and of what ``extend`` compares.
    """
    calibration = calibration_for(aligner, config)
    if calibration is None:
        return []
    rows = []
    for cue in [*sorted(calibration.cues), None]:
        for name in ("instance", "temporal"):
            fitted, whose = calibration.map_for(cue, name)
            state = "uncalibrated" if fitted is None else "null" if fitted.uninformative else "calibrated"
            reason = fitted.uninformative if fitted is not None else None
            rows.append({"cue": cue, "score": name, "map": whose if fitted else None, "state": state, "reason": reason})
    return rows


def calibrate(analysis: Analysis, calibration: Calibration | None) -> Analysis:
    """The analysis with its instance score and windows mapped to P(matched), raw values kept beside them.

    The maps are the clip's cue's (`Calibration.map_for`). The instance map
    reads ``Score.raw``; the temporal map reads each window's value. An
    uninformative map gives no value, with its reason. Language is
    left as it is (no benchmark variant tells a matching caption from
    another). Apply it to rounded numbers (`Analysis.rounded`), and round
    again, so that every machine maps the same inputs.
    """
    if calibration is None:
        return analysis
    instance, windows, raw_windows = analysis.instance, analysis.temporal_windows, analysis.temporal_raw
    temporal_reason = analysis.temporal_reason
    fitted, whose = calibration.map_for(analysis.cue, "instance")
    if fitted is not None and instance.raw is not None:
        if fitted.uninformative:
            instance = Score(None, instance.raw, _refusal(fitted, whose))
        else:
            instance = Score(round_score(fitted(instance.raw)), instance.raw, instance.reason)
    fitted, whose = calibration.map_for(analysis.cue, "temporal")
    if fitted is not None and windows is not None:
        raw_windows = windows
        if fitted.uninformative:
            windows, temporal_reason = None, _refusal(fitted, whose)
        else:
            windows = [round_score(fitted(w)) for w in windows]  # type: ignore[misc]
    return replace(
        analysis, instance=instance, temporal_windows=windows, temporal_reason=temporal_reason, temporal_raw=raw_windows
    )


def _refusal(fitted: PlattMap, whose: str) -> str:
    """Why an uninformative map gives no score: which map, and what its fit found."""
    return f"calibration of {whose}: {fitted.uninformative}"

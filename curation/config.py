"""Curation settings: one frozen dataclass, loadable from a JSON or TOML file.

Every setting that changes what is written is here, so that a release records
the exact configuration that produced it (``report.json``) and a rerun with
the same inputs and config reproduces the shards byte for byte. The few that
change only how a run runs (`UNRECORDED`) are here too, but not recorded.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any


def load_settings(path: str | Path) -> dict[str, Any]:
    """A settings file's table: TOML for a ``.toml`` file, JSON otherwise (the curation config, the profile's)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)


UNRECORDED = frozenset({"decode_ahead"})
"""Settings of how a run runs, not of what it writes: left out of ``report.json`` and the plan's fingerprint."""


@dataclass(frozen=True)
class CurationConfig:
    profile: str = "cpu"
    """Named model stack (see `curation.profiles`)."""
    clip_seconds: float = 10.0
    min_clip_seconds: float = 1.0
    """A tail shorter than this is not a clip; an input shorter than this is rejected as too short."""
    max_clips_per_input: int | None = None
    max_fps: float = 25.0
    """Frame rate of the written ``mp4`` (the source rate when lower)."""
    max_side: int = 384
    """Longest side of the written frames, pixels (never upscaled)."""
    language_threshold: float = 0.5
    instance_threshold: float = 0.5
    temporal_threshold: float = 0.5
    max_offset: float = 1.0
    """Search range of the audio-visual sync offset, seconds (both directions)."""
    realign_min_confidence: float = 0.5
    """A failing clip is re-aligned only when its sync offset was estimated at least this confidently."""
    silence_dbfs: float = -60.0
    """Audio whose RMS level is below this is rejected as silent."""
    dedup_threshold: float | None = 0.95
    """Embedding cosine at which a clip is a near-duplicate of an earlier kept one and removed (profiles that embed
    clips, e.g. ``paper``); None keeps duplicates."""
    calibration: str | None = None
    """Calibration file mapping the aligner's raw values to P(matched) (`curation.calibration`); None: the one shipped
    for the profile's aligner, if any; ``"none"``: the aligner's own scores, uncalibrated."""
    keep_flagged: bool = False
    """Keep clips that fail a filter (marked ``alignment.passed = false``) instead of rejecting them."""
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """train / validation / test, assigned by a hash of the source video id."""
    shard_max_samples: int = 1000
    inputs_per_unit: int = 16
    """Inputs per unit of work. Units are planned before any work starts; a unit is what is scheduled and resumed."""
    batch_size: int = 8
    """Clips per model batch (captioner, embedder)."""
    decode_ahead: int = 2
    """Batches decoded in a background thread ahead of the model stages (`curation.decode_ahead`), so that neither
    waits for the other; 0 decodes inline. It changes when a clip is decoded, never what is written, so it is not
    recorded (`UNRECORDED`) and a run may resume with another value. Memory: ``decode_ahead + 1`` batches per unit."""
    shard_max_bytes: int = 1_000_000_000
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        """The settings a release records (``report.json``) and its fingerprint hashes: all but `UNRECORDED`."""
        return {name: value for name, value in asdict(self).items() if name not in UNRECORDED}

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> CurationConfig:
        """Read a ``.json`` or ``.toml`` file; unknown keys are an error naming the file."""
        return cls.from_dict(load_settings(path), source=str(path)).with_overrides(**overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> CurationConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown setting(s) {', '.join(unknown)}")
        if "split_fractions" in data:
            data = {**data, "split_fractions": tuple(data["split_fractions"])}
        return cls(**data)

    def with_overrides(self, **overrides: Any) -> CurationConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def __post_init__(self) -> None:
        numbers = {f.name: getattr(self, f.name) for f in fields(self)}
        numbers.update({f"split_fractions[{i}]": v for i, v in enumerate(self.split_fractions)})
        not_finite = [name for name, v in numbers.items() if isinstance(v, float) and not math.isfinite(v)]
        if not_finite:  # NaN passes every comparison below, and report.json must be strict JSON
            raise ValueError(f"config: {', '.join(not_finite)} must be a finite number")
        if self.clip_seconds < self.min_clip_seconds or self.min_clip_seconds <= 0:
            raise ValueError(
                f"config: need 0 < min_clip_seconds <= clip_seconds, got {self.min_clip_seconds}, {self.clip_seconds}"
            )
        if abs(sum(self.split_fractions) - 1.0) > 1e-6 or len(self.split_fractions) != 3:
            raise ValueError(f"config: split_fractions must be three numbers summing to 1, got {self.split_fractions}")
        if min(self.shard_max_samples, self.shard_max_bytes, self.inputs_per_unit, self.batch_size) < 1:
            raise ValueError("config: shard bounds, inputs_per_unit and batch_size must be positive")
        if isinstance(self.decode_ahead, bool) or not isinstance(self.decode_ahead, int) or self.decode_ahead < 0:
            raise ValueError(
                f"config: decode_ahead must be a whole number of batches >= 0 (0: decode inline), got {self.decode_ahead!r}"
            )


DEMO_CONFIG = CurationConfig(keep_flagged=True)
"""What ``acav1m demo`` (and the bundled sample release in ``croissant/``) uses: the defaults, but clips that fail a
filter are kept and marked, so that a newcomer sees every clip with its scores."""

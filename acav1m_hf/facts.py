"""What a release is, as one typed record (`ReleaseFacts`) that the card, Croissant, ``acav1m info`` and the site read.

A release has two sources of facts, and each fact comes from exactly one of them:

* **The files** (``data/*.tar`` and ``metadata/{split}.parquet``) are the truth for what is in the shards: the splits,
  their clips and seconds (rows of the index and their ``clip.duration``), shards, bytes and sha256, the acav1m
  version that wrote the clips, and the score histograms. The card's YAML must match the files (``datasets``
  checks ``num_examples`` on every load) and Croissant lists their sha256, so a folder whose files were changed
  after curation is described as it is, never as the report remembers it. The report's own ``splits`` is
  never read.
* **The report** (``report.json``) is the only record of what curation did, which the files cannot tell: inputs
  and clips kept and rejected, rejection reasons, filter pass rates and thresholds, re-aligned and analysed clips,
  profile, configuration and publication date (`CurationFacts`), and of the release's version and the date of
  its last change (``release_version``, ``date_modified``: written by `acav1m_hf.maintain`).

`ReleaseFacts.read` builds the record from a folder; `ReleaseFacts.build` from parts a caller already holds
(curation's finalize step passes its report, the size and sha256 of the shards it moved, and its indexes' bytes,
so no shard is read back and no folder is needed). Both summarise an index with `IndexFacts` from the same Arrow
columns, so they agree on the same release. Pass rates are written as text by `format_rate` only.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acav1m_hf.release import REPORT, file_sha256, index_name, list_shards
from acav1m_hf.schema import SPLITS

FILTERS = ("language", "instance", "temporal")
"""The alignment filters of Algorithm 1, in the order the report's ``pass_rates`` and the card list them."""

SCORES = (
    "alignment.language.score",
    "alignment.instance.score",
    "alignment.temporal.score",
    "alignment.sync.confidence",
)
"""Index columns in [0, 1] whose distribution `ScoreFacts` keeps."""

FIRST_VERSION = "1.0.0"
"""The version of a release as curation first writes it; ``report.json``'s ``release_version`` holds a later one
(`acav1m_hf.maintain.versions`: a removal or an extension bumps the minor number)."""

HISTOGRAM_BINS = 10
"""Equal bins over [0, 1] of each score histogram."""

DURATION = "clip.duration"
VERSION = "pipeline.version"
INDEX_COLUMNS = (DURATION, VERSION, *SCORES)
"""The only index columns a summary reads (the index has dozens; these stay cheap on a large release)."""


def format_rate(rate: float | None) -> str:
    """A pass rate as every reader shows it: ``25.0 %``, or ``not computed`` when no clip reached the filter."""
    is_number = isinstance(rate, (int, float)) and not isinstance(rate, bool)
    return f"{100 * rate:.1f} %" if is_number else "not computed"


def format_hours(seconds: float | None) -> str:
    """Seconds as hours with three decimals (the card's precision), or ``unknown``."""
    return f"{seconds / 3600:.3f}" if seconds is not None else "unknown"


# --------------------------------------------------------------------------- the files


@dataclass(frozen=True)
class FileFacts:
    """One file of the release: its path relative to the root, size in bytes, and sha256 (None when not computed)."""

    path: str
    bytes: int
    sha256: str | None

    @property
    def name(self) -> str:
        """The file name without its folder (``train-00000.tar``)."""
        return self.path.rsplit("/", 1)[-1]

    @classmethod
    def read(cls, root: Path, rel: str, *, checksums: bool) -> FileFacts:
        path = root / rel
        return cls(rel, path.stat().st_size, file_sha256(path) if checksums else None)


@dataclass(frozen=True)
class ScoreFacts:
    """The distribution of one score column: rows, rows with a score, and counts per `HISTOGRAM_BINS` bin of [0, 1]."""

    column: str
    rows: int
    scored: int
    bins: tuple[int, ...]

    @classmethod
    def of(cls, column: str, values: list[float | None]) -> ScoreFacts:
        import numpy as np

        scored = [v for v in values if v is not None]
        counts, _ = np.histogram(scored, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        return cls(column, len(values), len(scored), tuple(int(c) for c in counts))

    def __add__(self, other: ScoreFacts) -> ScoreFacts:
        bins = tuple(a + b for a, b in zip(self.bins, other.bins, strict=True))
        return ScoreFacts(self.column, self.rows + other.rows, self.scored + other.scored, bins)


@dataclass(frozen=True)
class IndexFacts:
    """A split's Parquet index, summarised: the file, its clips and seconds, the versions that wrote them, scores."""

    file: FileFacts
    clips: int
    seconds: float
    versions: frozenset[str]
    scores: dict[str, ScoreFacts]

    @classmethod
    def read(cls, root: Path, split: str, *, checksums: bool) -> IndexFacts:
        """The index of ``split`` in the folder ``root``."""
        import pyarrow.parquet as pq

        rel = index_name(split)
        return cls.of_table(
            FileFacts.read(root, rel, checksums=checksums), pq.read_table(root / rel, columns=list(INDEX_COLUMNS))
        )

    @classmethod
    def from_bytes(cls, split: str, data: bytes) -> IndexFacts:
        """The index of ``split`` from the bytes of its file (a caller that holds them, on any filesystem)."""
        import hashlib

        import pyarrow.parquet as pq

        file = FileFacts(index_name(split), len(data), hashlib.sha256(data).hexdigest())
        return cls.of_table(file, pq.read_table(io.BytesIO(data), columns=list(INDEX_COLUMNS)))

    @classmethod
    def of_table(cls, file: FileFacts, table: Any) -> IndexFacts:
        """The summary of an Arrow table of `INDEX_COLUMNS` (values as the index stores them: float32 durations)."""
        seconds = 0.0
        for value in table.column(DURATION).to_pylist():
            seconds += value
        versions = frozenset(v for v in table.column(VERSION).to_pylist() if v)
        scores = {c: ScoreFacts.of(c, table.column(c).to_pylist()) for c in SCORES}
        return cls(file, table.num_rows, round(seconds, 3), versions, scores)


@dataclass(frozen=True)
class SplitFacts:
    """One split as its files show it. ``clips`` and ``seconds`` are None when the split has shards but no index."""

    name: str
    shards: tuple[FileFacts, ...]
    index: IndexFacts | None

    @property
    def clips(self) -> int | None:
        return self.index.clips if self.index else None

    @property
    def seconds(self) -> float | None:
        return self.index.seconds if self.index else None

    @property
    def bytes(self) -> int:
        """Bytes of the split's shards (the index is not counted)."""
        return sum(s.bytes for s in self.shards)

    @property
    def hours(self) -> str:
        return format_hours(self.seconds)


# --------------------------------------------------------------------------- the report


def _ordered(mapping: dict[str, Any]) -> dict[str, Any]:
    """Inputs, then clips, then any other key sorted: the same order whether the report was read back or not."""
    first = [k for k in ("inputs", "clips") if k in mapping]
    return {k: mapping[k] for k in first + sorted(k for k in mapping if k not in first)}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _licence_rows(value: Any) -> tuple[dict[str, str], ...]:
    rows = value if isinstance(value, list) else []
    return tuple(dict(row) for row in rows if isinstance(row, dict) and all(isinstance(v, str) for v in row.values()))


def _map_rows(value: Any) -> tuple[dict[str, Any], ...]:
    """``calibration_maps`` records with a known score and state (a foreign report's others are left out)."""
    rows = value if isinstance(value, list) else []
    return tuple(
        dict(row)
        for row in rows
        if isinstance(row, dict)
        and row.get("score") in ("instance", "temporal")
        and row.get("state") in ("calibrated", "null", "uncalibrated")
        and (row.get("cue") is None or isinstance(row.get("cue"), str))
    )


@dataclass(frozen=True)
class CurationFacts:
    """What curation did, from its report; every field is optional there (a sparse or foreign report reads as empty).

    ``pass_rates`` is empty when the report has none, else holds every filter of `FILTERS` (None where no clip
    reached it); ``thresholds`` likewise from ``config``.
    """

    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    pass_rates: dict[str, float | None] = field(default_factory=dict)
    thresholds: dict[str, float | None] = field(default_factory=dict)
    analysed_clips: int | None = None
    realigned: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    profile_settings: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    """Whether the alignment scores were calibrated (``calibrated``), by which file, for which ``aligner``."""
    calibration_maps: tuple[dict[str, Any], ...] = ()
    """Per cue and score, what the calibration did: ``calibrated``, ``null`` or ``uncalibrated``."""
    model_licences: tuple[dict[str, str], ...] = ()
    """The profile's models with their licences (role, model, package, licence, stated_in), as the report lists
    them; rows that are not objects of strings are left out."""
    acav1m_version: str | None = None
    date_published: str | None = None
    release_version: str = FIRST_VERSION
    date_modified: str | None = None

    @classmethod
    def from_report(cls, report: Any) -> CurationFacts:
        report = _dict(report)
        rates = report.get("pass_rates")
        config = _dict(report.get("config"))
        counts = {k: v for k, v in _ordered(_dict(report.get("counts"))).items() if isinstance(v, dict)}
        reasons = {
            k: dict(sorted(v.items())) for k, v in _ordered(_dict(report.get("reasons"))).items() if isinstance(v, dict)
        }
        version, date = report.get("acav1m_version"), report.get("date_published")
        release_version, modified = report.get("release_version"), report.get("date_modified")
        return cls(
            counts=counts,
            reasons=reasons,
            pass_rates={n: rates.get(n) for n in FILTERS} if isinstance(rates, dict) else {},
            thresholds={n: config.get(f"{n}_threshold") for n in FILTERS},
            analysed_clips=_int(report.get("analysed_clips")),
            realigned=_int(report.get("realigned")),
            config=config,
            profile_settings=_dict(report.get("profile_settings")),
            calibration=_dict(report.get("calibration")),
            calibration_maps=_map_rows(report.get("calibration_maps")),
            model_licences=_licence_rows(report.get("model_licences")),
            acav1m_version=version if isinstance(version, str) and version else None,
            date_published=date if isinstance(date, str) and date else None,
            release_version=release_version if isinstance(release_version, str) else FIRST_VERSION,
            date_modified=modified if isinstance(modified, str) and modified else None,
        )

    @property
    def profile(self) -> str | None:
        """The model profile curation ran (``cpu``, ``gpu``, ...); its models' settings are `profile_settings`."""
        profile = self.config.get("profile")
        return profile if isinstance(profile, str) else None

    def rate(self, name: str) -> str:
        """The pass rate of filter ``name``, formatted (`format_rate`)."""
        return format_rate(self.pass_rates.get(name))


# --------------------------------------------------------------------------- the release


@dataclass(frozen=True)
class ReleaseFacts:
    """A release: its splits (from its files), score distributions, and what curation did (from its report).

    ``splits`` holds, in `SPLITS` order, every split that has shards or an index.
    """

    splits: dict[str, SplitFacts]
    curation: CurationFacts

    @classmethod
    def read(cls, root: str | Path, *, checksums: bool = True) -> ReleaseFacts:
        """The facts of the release folder ``root``; ``checksums=False`` skips the sha256 of every file.

        A missing or unreadable ``report.json`` reads as an empty report.
        """
        import json

        root = Path(root)
        try:
            report = json.loads((root / REPORT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = {}
        shards = [
            FileFacts.read(root, p.relative_to(root).as_posix(), checksums=checksums)
            for paths in list_shards(root).values()
            for p in paths
        ]
        indexes = {s: IndexFacts.read(root, s, checksums=checksums) for s in SPLITS if (root / index_name(s)).exists()}
        return cls.build(report, shards, indexes)

    @classmethod
    def build(cls, report: Any, shards: Iterable[FileFacts], indexes: Mapping[str, IndexFacts]) -> ReleaseFacts:
        """The facts from parts already in hand: the report, every shard file, and the index of each split that has one.

        A shard is assigned to its split by its name (``data/{split}-{n:05d}.tar``); pass them in shard order.
        """
        from acav1m_hf.release import SHARD_PATTERN

        by_split: dict[str, list[FileFacts]] = {}
        for shard in shards:
            match = SHARD_PATTERN.match(shard.name)
            if match is None or match["split"] not in SPLITS:
                raise ValueError(f"{shard.path}: not a shard name (data/{{split}}-{{n:05d}}.tar)")
            by_split.setdefault(match["split"], []).append(shard)
        splits = {
            s: SplitFacts(s, tuple(by_split.get(s, ())), indexes.get(s))
            for s in SPLITS
            if s in by_split or s in indexes
        }
        return cls(splits, CurationFacts.from_report(report))

    @property
    def with_shards(self) -> dict[str, SplitFacts]:
        """The splits that have shards: the ones the card's ``configs`` and tables list."""
        return {s: v for s, v in self.splits.items() if v.shards}

    @property
    def clips(self) -> int:
        """Clips in the shards (splits without an index count none)."""
        return sum(v.clips or 0 for v in self.with_shards.values())

    @property
    def seconds(self) -> float | None:
        """Seconds in the shards, or None when a split with shards has no index."""
        seconds = [v.seconds for v in self.with_shards.values()]
        return sum(seconds) if all(s is not None for s in seconds) else None  # type: ignore[arg-type]

    @property
    def shards(self) -> list[FileFacts]:
        return [f for v in self.splits.values() for f in v.shards]

    @property
    def indexes(self) -> list[IndexFacts]:
        return [v.index for v in self.splits.values() if v.index is not None]

    @property
    def version(self) -> str | None:
        """The acav1m version that wrote every clip, or None when the indexes name none or several."""
        versions = frozenset().union(*(i.versions for i in self.indexes))
        return next(iter(versions)) if len(versions) == 1 else None

    @property
    def scores(self) -> dict[str, ScoreFacts]:
        """Each `SCORES` column's distribution over every index."""
        totals = {c: ScoreFacts(c, 0, 0, (0,) * HISTOGRAM_BINS) for c in SCORES}
        for index in self.indexes:
            for c in SCORES:
                totals[c] = totals[c] + index.scores[c]
        return totals

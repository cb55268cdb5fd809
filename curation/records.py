"""Typed records that flow between the curation stages.

An input file (`InputItem`) is decoded into clips (`Clip`); each clip is
analysed into metadata and encoded into a `Sample`, the unit a shard holds.
Stages are plain functions from one record to the next. What a unit of work
produced is a `UnitRecord`, the only thing finalize reads of it; each record
has ``to_dict``/``from_dict`` for its JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from curation.redact import redact_url


@dataclass(frozen=True)
class InputItem:
    """One input video, as given on the command line or by a manifest row."""

    path: str
    """Local path or fsspec URL, as opened (manifest-relative paths resolved)."""
    video_id: str
    """Stable id of the source video; clips of one video share a split."""
    start: float | None = None
    end: float | None = None
    text: str | None = None
    license: str | None = None
    given: str | None = None
    """The path as the user or the manifest wrote it, recorded in ``source.path`` (never a machine's absolute path
    that the user did not write). None means ``path``."""
    ytdlp: bool = False
    """Fetched with yt-dlp, only the window ``start``-``end`` and a margin, into the fetch cache (`curation.segments`):
    a manifest row naming a video id, or a URL to a page rather than to a media file. Otherwise read through fsspec."""

    @property
    def recorded(self) -> str:
        """The input as a release records it (``source.path``, ``inputs.jsonl``): as written, URL credentials masked."""
        return redact_url(self.given or self.path)


@dataclass(frozen=True)
class SourceInfo:
    """What the site says of a fetched video (yt-dlp's metadata), kept in the sample's ``source``; None: not stated."""

    title: str | None = None
    uploader: str | None = None
    upload_date: str | None = None
    """ISO date, ``YYYY-MM-DD``."""
    license: str | None = None
    """As the site states it, e.g. "Creative Commons Attribution license (reuse allowed)"."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceInfo:
        return cls(**data)


@dataclass(frozen=True)
class FrameSource:
    """Where a clip's frames can be decoded again at the source's own resolution (`curation.decode.source_frames`).

    The written frames are scaled down to ``max_side``; a face that is small at that size has too few pixels for
    its lips to be read, while the source may have them (`curation.models.faces`).
    """

    path: str
    """What `curation.fetch.open_input` opens: the input, or the segment yt-dlp fetched of it."""
    t0: float
    """Container time of the decoder's time zero (the input's first video frame)."""
    first: int
    """The clip's first frame slot on that axis, at the clip's ``fps``."""
    width: int
    height: int
    """The source's frame size, pixels."""


@dataclass
class Clip:
    """A decoded clip: frames and audio on one time axis starting at ``start``."""

    item: InputItem
    index: int
    """Position of the clip within its input."""
    start: float
    """Seconds in the source."""
    end: float
    frames: np.ndarray
    """uint8 RGB, shape (T, H, W, 3), at ``fps``."""
    fps: float
    audio: np.ndarray
    """float32 mono at 16 kHz, ``int(duration * 16000)`` samples; silence where the source had no audio."""
    audio_late: float = 0.0
    """Seconds by which the source's audio stream started after its video stream (container timing)."""
    site: SourceInfo | None = None
    """The site's metadata of a video fetched with yt-dlp; None for files read as they are."""
    source: FrameSource | None = None
    """Where ``frames`` can be decoded again at the source's resolution; None: the frames are all there is."""

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Sample:
    """One WebDataset sample: its key, metadata and encoded members."""

    key: str
    metadata: dict[str, Any]
    members: dict[str, bytes] = field(default_factory=dict)


class Rejected(Exception):
    """An input or a clip that curation does not keep, with a short machine-readable reason.

    ``retryable`` says whether the cause may pass (a network or I/O error): such an
    input is recorded as retryable, and ``--retry-failed`` tries it again.
    """

    def __init__(self, reason: str, detail: str = "", retryable: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


class CurationError(RuntimeError):
    """The run as a whole cannot go on (e.g. it wrote nothing from non-empty input)."""


@dataclass(frozen=True)
class ModelFailure:
    """A model stage that raised on a clip: the clip goes on with null values and this reason, and is retryable.

    ``--retry-failed`` redoes the units whose clips had one, since the cause
    (an out-of-memory GPU, an endpoint down) may pass.
    """

    stage: str
    """``captioner``, ``condenser``, ``aligner`` or ``language``."""
    error: str
    """``Type: message``, already shortened (and redacted) by the stage."""

    @property
    def reason(self) -> str:
        """The reason recorded on the clip."""
        return f"{self.stage} failed: {self.error}"


@dataclass(frozen=True)
class FilterVerdicts:
    """The filters' verdicts on one analysed clip (None: no judgement), counted into the report's pass rates."""

    language: bool | None
    instance: bool | None
    temporal: bool | None
    flags: list[str]
    realigned: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FilterVerdicts:
        return cls(**data)


@dataclass(frozen=True)
class ClipOutcome:
    """What became of one decoded clip: a sample to write, or the reason it was rejected."""

    sample: Sample | None
    rejected: str = ""
    """The clip's rejection reason (``silent_audio``, ``failed_instance``...) when ``sample`` is None."""
    verdicts: FilterVerdicts | None = None
    """None for a clip that was never analysed (silent)."""
    failure: ModelFailure | None = None


@dataclass(frozen=True)
class InputLine:
    """One line of ``inputs.jsonl``: what became of one input (built by `curation.inputs.input_line`)."""

    input: str
    video_id: str | None
    start: float | None
    end: float | None
    outcome: str
    """``kept`` or ``rejected``."""
    reason: str | None
    detail: str | None
    clips: int
    clips_rejected: dict[str, int]
    retryable: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputLine:
        return cls(**data)


@dataclass(frozen=True)
class PartRecord:
    """One shard part a unit wrote: its file name (under the run's work folder), sample count, size and sha256."""

    part: str
    samples: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartRecord:
        return cls(**data)


@dataclass(frozen=True)
class UnitFailure:
    """A unit that raised on every attempt (an engine's verdict after its bounded retries)."""

    unit: str
    attempts: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitFailure:
        return cls(**data)


@dataclass(frozen=True)
class UnitRecord:
    """What one unit produced: its parts, index rows, per-input lines and per-clip counts.

    A finished unit's record is its ``.done.json`` (`curation.ledger`), the
    last file it writes; finalize reads nothing else of the unit. A unit that
    failed every attempt is read back as a record with no parts, each input
    rejected ``unit_failed``, and ``failed`` set (`UnitRecord.of_failure`).
    """

    unit: str
    parts: list[PartRecord]
    rows: list[dict[str, Any]]
    """Index rows (the schema's flattened metadata), each with the name of its ``part``."""
    inputs: list[InputLine]
    clips: dict[str, int]
    """Clip outcome → count: ``kept`` and each rejection reason."""
    filters: list[FilterVerdicts]
    retryable: dict[str, int]
    """``inputs`` and ``clips`` with transient failures (``--retry-failed`` redoes the unit)."""
    vectors: dict[str, str] = field(default_factory=dict)
    """Kept clip key → its audio-visual direction, base64 float16 (`curation.deduplicate`)."""
    duplicates: dict[str, list[Any]] = field(default_factory=dict)
    """Removed clip key → ``[key of the clip it duplicates, cosine]``."""
    failed: UnitFailure | None = None

    @classmethod
    def of_failure(cls, failure: UnitFailure, lines: list[InputLine]) -> UnitRecord:
        """A failed unit as finalize sees it: no parts, every input rejected (``lines``)."""
        retryable = {"inputs": len(lines), "clips": 0}
        return cls(failure.unit, [], [], lines, {}, [], retryable, failed=failure)

    @property
    def needs_retry(self) -> bool:
        """Whether ``--retry-failed`` redoes this unit: it failed, or some of its inputs or clips failed transiently."""
        return self.failed is not None or any(self.retryable.values())

    def to_dict(self) -> dict[str, Any]:
        """The ``.done.json`` object (``duplicates`` only once some were removed, ``failed`` only for a failure)."""
        data: dict[str, Any] = {
            "unit": self.unit,
            "parts": [part.to_dict() for part in self.parts],
            "rows": self.rows,
            "inputs": [line.to_dict() for line in self.inputs],
            "clips": self.clips,
            "filters": [verdicts.to_dict() for verdicts in self.filters],
            "retryable": self.retryable,
            "vectors": self.vectors,
        }
        if self.duplicates:
            data["duplicates"] = self.duplicates
        if self.failed is not None:
            data["failed"] = self.failed.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitRecord:
        return cls(
            unit=data["unit"],
            parts=[PartRecord.from_dict(part) for part in data["parts"]],
            rows=data["rows"],
            inputs=[InputLine.from_dict(line) for line in data["inputs"]],
            clips=data["clips"],
            filters=[FilterVerdicts.from_dict(row) for row in data["filters"]],
            retryable=data["retryable"],
            vectors=data.get("vectors", {}),
            duplicates=data.get("duplicates", {}),
            failed=UnitFailure.from_dict(data["failed"]) if data.get("failed") else None,
        )

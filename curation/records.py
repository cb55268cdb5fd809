"""Typed records that flow between the curation stages.

An input file (`InputItem`) is decoded into clips (`Clip`); each clip is
analysed into metadata and encoded into a `Sample`, the unit a shard holds.
Stages are plain functions from one record to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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

"""Writer: samples → WebDataset tar shards, deterministic and atomic.

Members are written in sorted order with fixed mtime, owner and mode, so the
same samples give byte-identical tars. Each tar is written under a temporary
name and renamed only when complete: a crash never leaves a partial shard
under a shard's name. A new shard starts when the current one reaches
``max_samples`` samples or ``max_bytes`` bytes of payload.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import webdataset as wds

from acav1m_hf.release import file_sha256
from curation.records import Sample


@dataclass(frozen=True)
class ShardStats:
    """What one finished shard holds (img2dataset-style per-shard stats)."""

    path: str
    samples: int
    bytes: int
    sha256: str


class ShardWriter:
    """Writes samples into ``name_for(part)`` tars, rolling over at the configured bounds."""

    def __init__(self, name_for: Callable[[int], Path], max_samples: int, max_bytes: int) -> None:
        self.name_for, self.max_samples, self.max_bytes = name_for, max_samples, max_bytes
        self.finished: list[ShardStats] = []
        self._part = 0
        self._tar: wds.TarWriter | None = None
        self._samples = 0
        self._bytes = 0

    def write(self, sample: Sample) -> str:
        """Write one sample; return the final path of the shard that holds it."""
        if self._tar is not None and (self._samples >= self.max_samples or self._bytes >= self.max_bytes):
            self._close()
        if self._tar is None:
            path = self.name_for(self._part)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._tar = wds.TarWriter(str(_temporary(path)), encoder=False, mtime=0, user="acav1m", group="acav1m")
        self._bytes += self._tar.write({"__key__": sample.key, **sample.members})
        self._samples += 1
        return str(self.name_for(self._part))

    def close(self) -> list[ShardStats]:
        if self._tar is not None:
            self._close()
        return self.finished

    def _close(self) -> None:
        assert self._tar is not None
        self._tar.close()
        final = self.name_for(self._part)
        temporary = _temporary(final)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, final)
        self.finished.append(ShardStats(str(final), self._samples, final.stat().st_size, file_sha256(final)))
        self._tar, self._samples, self._bytes = None, 0, 0
        self._part += 1


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")

"""The fetch cache: segments fetched with yt-dlp, on local disk, keyed by (url, start, end, format).

A rerun, a resume after a crash and ``--retry-failed`` find a segment here and never download it again; ``acav1m
fetch`` fills the cache on one machine so that ``acav1m curate --cache-dir`` reads it on another. An entry is a media
file ``{key}.{ext}`` and its record ``{key}.json`` (the window, the format and the site's metadata), written in that
order, each under a temporary name and renamed whole: the record is the entry's commit, so a crash mid-fetch leaves
no entry, only a temporary file that the next `store` of the same key replaces. Past ``max_bytes``, the entries used
longest ago are removed (a lookup counts as a use). ``hosts/`` holds the per-host limits' lock files
(`curation.hosts`), shared by every process fetching into the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from curation.records import SourceInfo

HOSTS_DIR = "hosts"


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/acav1m/fetch`` (``~/.cache/acav1m/fetch``): local disk, whatever the output's store."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "acav1m", "fetch")


@dataclass(frozen=True)
class Segment:
    """A fetched segment: the local file, and the second of the source its time zero is."""

    path: str
    offset: float
    site: SourceInfo
    audio: bool
    """Whether the segment has an audio stream (one without is kept only when the source itself has none)."""


def segment_key(url: str, start: float, end: float | None, form: str) -> str:
    """The cache key of a segment: a hash of what decides its bytes."""
    text = json.dumps([url, start, end, form])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FetchCache:
    """The folder ``root``, holding at most ``max_bytes`` of segments."""

    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._bytes: int | None = None
        """What this process believes the cache holds: the folder is scanned only when that passes the cap."""

    def lookup(self, key: str) -> Segment | None:
        """The segment stored under ``key``, or None."""
        record = self.root / f"{key}.json"
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        media = self.root / data["file"]
        if not media.is_file():
            return None
        os.utime(record)  # a use: eviction removes the entries used longest ago
        return Segment(str(media), data["offset"], SourceInfo.from_dict(data["site"]), data["audio"])

    def staging(self, key: str) -> Path:
        """An empty folder of the cache's file system for yt-dlp to write ``key``'s segment in.

        It is named after this machine and process, so that processes fetching one segment at once (on one machine
        or on the machines of a network disk) never share one; the folders of ``key`` that a process of this machine
        left when it died (a crash mid-fetch) are removed, so that they do not pile up.
        """
        tmp, mine = self.root / "tmp", f"{socket.gethostname()}-"
        for left in tmp.glob(f"{key}-{mine}*"):
            if not _alive(int(left.name.rsplit("-", 1)[1])):
                shutil.rmtree(left, ignore_errors=True)
        folder = tmp / f"{key}-{mine}{os.getpid()}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def store(self, key: str, fetched: Path, segment: Segment, about: dict[str, object]) -> Segment:
        """Move the file ``fetched`` in under ``key`` with its record, then keep the cache under its size cap."""
        media = self.root / f"{key}{fetched.suffix}"
        os.replace(fetched, media)
        shutil.rmtree(fetched.parent, ignore_errors=True)
        record = {"file": media.name, "offset": segment.offset, "site": segment.site.to_dict(), "audio": segment.audio}
        record.update(about)
        temporary = self.root / f"{key}.json.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.root / f"{key}.json")
        if self._bytes is None:
            self._bytes = sum(entry.stat().st_size for entry in os.scandir(self.root) if entry.is_file())
        else:
            self._bytes += media.stat().st_size
        if self._bytes > self.max_bytes:
            self._bytes = self._evict(keep=key)
        return Segment(str(media), segment.offset, segment.site, segment.audio)

    def _evict(self, keep: str) -> int:
        """Remove the entries used longest ago until the cache is under its cap; return the bytes it holds."""
        entries = []
        for record in self.root.glob("*.json"):
            try:
                media = self.root / json.loads(record.read_text(encoding="utf-8"))["file"]
                entries.append((record.stat().st_mtime, record, media, media.stat().st_size))
            except (OSError, ValueError, KeyError):
                continue  # removed by another process meanwhile
        total = sum(size for *_, size in entries)
        for _, record, media, size in sorted(entries, key=lambda entry: entry[0]):
            if total <= self.max_bytes:
                break
            if record.stem != keep:
                record.unlink(missing_ok=True)
                media.unlink(missing_ok=True)
                total -= size
        return total


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""The safe tar reader of `acav1m_hf.streaming`: raw samples from opened shards, refusing what no shard may hold.

webdataset would expand a compressed file, follow a link member and read any member whole into memory; this reader
checks each member's tar header with `acav1m_hf.schema.check_member` (the rule `acav1m validate` applies too) before
it reads a byte of it, and reads only the members of the schema.
"""

from __future__ import annotations

import sys
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any

from webdataset.pipeline import PipelineStage

from acav1m_hf.schema import MEMBER_EXTENSIONS, check_member

_MEMBERS = frozenset(MEMBER_EXTENSIONS)


class _SelectMembers:
    """True for a member of the schema; any other member is skipped unread, or refused with ``unknown="error"``."""

    def __init__(self, unknown: str) -> None:
        if unknown not in ("skip", "error"):
            raise ValueError(f"unknown must be 'skip' or 'error', got {unknown!r}")
        self.unknown = unknown

    def __call__(self, name: str, extension: str) -> bool:
        if extension in _MEMBERS:
            return True
        if self.unknown == "error":
            raise ValueError(f"{name}: not an ACAV-1M member (expected one of {', '.join(MEMBER_EXTENSIONS)})")
        return False


class ReadShards(PipelineStage):
    """Samples from opened shards (``{"url", "stream"}``), read with ``tarfile`` in stream mode and checked as read.

    Whatever the shard, these are refused with an error naming it (an ACAV-1M shard never has them, so a shard that
    does is damaged or hostile): a compressed file (tarfile's own magic-byte detection; webdataset would gunzip it), a
    member that is not a regular file (link, device, FIFO, directory), a key outside `KEY_PATTERN` (``../x``,
    ``a/b``, an absolute path), and with ``unknown="error"`` a member outside the schema. A member over
    ``max_member_bytes`` (its tar header's size) is never read: its sample is yielded at once as ``__error__`` only
    (as is one with a member twice), its other members are skipped unread, and `DecodeSamples` raises or skips it.
    """

    def __init__(self, unknown: str, max_member_bytes: int) -> None:
        if max_member_bytes <= 0:
            raise ValueError(f"max_member_bytes must be positive, got {max_member_bytes}")
        self.select = _SelectMembers(unknown)
        self.max_member_bytes = max_member_bytes

    def run(self, src: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for source in src:
            try:
                yield from self._samples(source["url"], source["stream"])
            finally:
                source["stream"].close()

    def _samples(self, url: str, fileobj: Any) -> Iterator[dict[str, Any]]:
        try:
            tar = tarfile.open(fileobj=fileobj, mode="r|*")
        except tarfile.TarError as exc:
            raise ValueError(f"{url}: not a tar file ({exc})") from exc
        if tar.fileobj.comptype != "tar":  # what "r|*" detected from the magic bytes (tarfile's _Stream attribute)
            raise ValueError(
                f"{url}: {tar.fileobj.comptype}-compressed; ACAV-1M shards are plain tar, a compressed one is refused"
            )
        sample: dict[str, Any] | None = None
        refused = None  # the key of a sample refused at one of its members: the rest stay unread
        while True:
            try:
                info = tar.next()
            except tarfile.TarError as exc:
                raise ValueError(f"{url}: unreadable tar ({exc})") from exc
            if info is None:
                break
            tar.members = []  # stream mode: keep no list of every TarInfo read
            key, ext = self._check(url, info)
            if ext is None or key == refused:
                continue
            if sample is None or sample["__key__"] != key:
                if sample is not None:
                    yield sample
                sample = {"__key__": key, "__url__": url}
            problem = None
            if ext in sample:
                problem = f"member {ext} appears twice"
            elif info.size > self.max_member_bytes:
                problem = (
                    f"member {ext} is {info.size} bytes, over the limit of {self.max_member_bytes} (max_member_bytes)"
                )
            if problem is not None:
                yield {"__key__": key, "__url__": url, "__error__": problem}  # now, before tarfile skips the member
                sample, refused = None, key
                continue
            try:
                sample[ext] = tar.extractfile(info).read()
            except tarfile.TarError as exc:
                raise ValueError(f"{url}: unreadable tar at member {info.name!r} ({exc})") from exc
        if sample is not None:
            yield sample

    def _check(self, url: str, info: tarfile.TarInfo) -> tuple[str, str | None]:
        """(key, extension) of a member to read, extension None for one to skip unread; raises for a refused one.

        The member's size is left to `_samples`, which refuses only its sample (so that ``on_error="skip"`` can
        skip it); everything else `schema.check_member` refuses is the whole shard's fault.
        """
        try:
            key, ext = check_member(info, max_bytes=sys.maxsize)
            return key, ext if self.select(info.name, ext) else None
        except ValueError as exc:
            raise ValueError(f"{url}: {exc}") from None

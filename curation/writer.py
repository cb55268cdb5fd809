"""Writer: samples → WebDataset tar shards, deterministic and atomic, on any fsspec filesystem.

Members are written in sorted order with fixed mtime, owner and mode, so the
same samples give byte-identical tars. Each tar is written under a temporary
name and moved to its final name only when complete: a crash never leaves a
partial shard under a shard's name. A new shard starts when the current one
reaches ``max_samples`` samples or ``max_bytes`` bytes of payload.

`Store` is the output root (a local folder or any fsspec URL: ``s3://``,
``hf://``, ``memory://``...). What "atomic" means depends on the filesystem:

* **local** (POSIX): write ``.{name}.partial``, fsync, ``os.replace``; the
  rename is atomic, so a reader (or a resumed run) sees the whole file under
  its name or no file.
* **object stores and others** (write-then-move): write ``.{name}.partial``,
  then ``fs.mv`` it to its name. An object store has no rename: the move is a
  server-side copy followed by a delete, and the copy makes the final object
  appear whole or not at all (one PUT or one completed multipart upload).
  A crash between the copy and the delete leaves a stray ``.partial`` object,
  which is harmless (it is never read and is removed with ``_work``). Two
  things are not atomic there: a "directory" (a key prefix) can be seen half
  filled, and a move is not free (it copies the bytes once more server-side).

A write that fails removes its ``.partial`` (a kill cannot, and leaves a
stray one that is never read). A full disk (``ENOSPC``, or ``EDQUOT`` over a
quota) raises `OutputFull`, naming the file: the run stops there, since no
other unit could be written either, and a rerun resumes after space is freed.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from acav1m_hf.release import sha256_of
from curation.records import Sample
from curation.redact import redact_url


@dataclass(frozen=True)
class ShardStats:
    """What one finished shard holds (img2dataset-style per-shard stats)."""

    path: str
    samples: int
    bytes: int
    sha256: str


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class OutputFull(RuntimeError):
    """The output's filesystem is full: the run stops (a unit retried on a full disk would only fail again)."""


def _is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def _full(shown: str) -> OutputFull:
    return OutputFull(f"{shown}: no space left on device; free some space and rerun the same command to resume")


class _OutputFile(io.FileIO):
    """A local output file whose full-disk error names it (a bare ``ENOSPC`` from ``write`` names no file).

    It matters where several files are open at once (finalize writes the
    inputs list and the indexes together): the error names the file that
    could not be written, not the one whose ``with`` block it unwinds through.
    """

    def __init__(self, path: str, shown: str) -> None:
        super().__init__(path, "wb")
        self.shown = shown

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            if _is_full(exc):
                raise _full(self.shown) from exc
            raise


def partial_name(rel: str) -> str:
    """The temporary name a file is written under before it is moved to ``rel``."""
    head, _, name = rel.rpartition("/")
    return f"{head}/.{name}.partial" if head else f".{name}.partial"


class Store:
    """An output root on an fsspec filesystem; every path given to it is relative to the root (``a/b.tar``).

    A `Store` pickles (the filesystem and the root travel), so Ray workers
    write where the driver reads. ``memory://`` is the exception: each process
    has its own, so it only works with the local engine.
    """

    def __init__(self, url: str | Path) -> None:
        self.url = str(url)
        fs, root = fsspec.core.url_to_fs(self.url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # ----------------------------------------------------------------- paths
    def path(self, rel: str = "") -> str:
        """The filesystem path of ``rel`` (an OS path on a local store)."""
        if not rel:
            return self.root
        return f"{self.root.rstrip('/')}/{rel}"

    def local_path(self, rel: str = "") -> Path | None:
        """``rel`` as a `Path` when the store is local, else None."""
        return Path(self.path(rel)) if self.local else None

    def display(self, rel: str = "") -> str:
        """How ``rel`` is named in messages: the URL the user gave (credentials masked), plus ``rel``."""
        url = redact_url(self.url)
        return f"{url.rstrip('/')}/{rel}" if rel else url

    # ----------------------------------------------------------------- reading
    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def size(self, rel: str) -> int | None:
        """Size in bytes, or None when there is no such file."""
        try:
            info = self.fs.info(self.path(rel))
        except FileNotFoundError:
            return None
        return int(info["size"]) if info.get("type") == "file" else None

    def sha256(self, rel: str) -> str:
        with self.fs.open(self.path(rel), "rb") as f:
            return sha256_of(f)

    def listdir(self, rel: str = "") -> list[str]:
        """Names (not paths) directly under ``rel``; empty when it does not exist."""
        try:
            entries = self.fs.ls(self.path(rel), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        base = self.fs._strip_protocol(self.path(rel)).rstrip("/")
        names = []
        for entry in entries:
            entry = self.fs._strip_protocol(entry).rstrip("/")
            if entry != base:
                names.append(entry.rsplit("/", 1)[-1])
        return sorted(names)

    def files(self) -> list[str]:
        """Every file under the root, as root-relative names, sorted (one recursive listing)."""
        base = self.fs._strip_protocol(self.root).rstrip("/")
        found = (self.fs._strip_protocol(path) for path in self.fs.find(self.root))
        return sorted(path[len(base) + 1 :] for path in found if path.startswith(base + "/"))

    # ----------------------------------------------------------------- writing
    def makedirs(self, rel: str) -> None:
        try:
            self.fs.makedirs(self.path(rel), exist_ok=True)
        except OSError as exc:
            if _is_full(exc):
                raise _full(self.display(rel)) from exc
            raise

    @contextmanager
    def open_atomic(self, rel: str) -> Iterator[IO[bytes]]:
        """A binary file that appears under ``rel`` only once the block ends without error.

        On any error (Ctrl-C included) the temporary is removed; a full disk
        raises `OutputFull` naming ``rel``.
        """
        temporary = partial_name(rel)
        head = rel.rpartition("/")[0]
        try:
            if head:
                self.makedirs(head)
            if self.local:
                with io.BufferedWriter(_OutputFile(self.path(temporary), self.display(rel))) as f:
                    yield f
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(self.path(temporary), self.path(rel))
                return
            with self.fs.open(self.path(temporary), "wb") as f:
                yield f
            self.fs.mv(self.path(temporary), self.path(rel))
        except BaseException as exc:
            self.remove(temporary)
            if _is_full(exc):
                raise _full(self.display(rel)) from exc
            raise

    def write_atomic(self, rel: str, data: bytes | str) -> None:
        with self.open_atomic(rel) as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)

    def move(self, source: str, target: str) -> None:
        """Move a finished file to another name (atomic rename locally, copy-then-delete on object stores)."""
        head = target.rpartition("/")[0]
        if head:
            self.makedirs(head)
        if self.local:
            os.replace(self.path(source), self.path(target))
        else:
            self.fs.mv(self.path(source), self.path(target))

    def remove(self, rel: str) -> None:
        """Remove a file; no error when it is already gone."""
        try:
            self.fs.rm_file(self.path(rel))
        except FileNotFoundError:
            pass

    def remove_tree(self, rel: str) -> None:
        """Remove a folder and everything under it; no error when it is already gone."""
        try:
            self.fs.rm(self.path(rel), recursive=True)
        except FileNotFoundError:
            pass

    def remove_dir(self, rel: str) -> None:
        """Remove an empty folder (a no-op on stores without folders)."""
        try:
            self.fs.rmdir(self.path(rel))
        except (FileNotFoundError, OSError, NotImplementedError):
            pass

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through it (no read-back of the shard)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.count += len(data)
        self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        self.inner.flush()


class ShardWriter:
    """Writes samples into ``store``'s ``name_for(part)`` tars, rolling over at the configured bounds.

    Memory is one sample at a time: members stream into the open tar.
    """

    def __init__(self, store: Store, name_for: Callable[[int], str], max_samples: int, max_bytes: int) -> None:
        self.store, self.name_for, self.max_samples, self.max_bytes = store, name_for, max_samples, max_bytes
        self.finished: list[ShardStats] = []
        self._part = 0
        self._file: Any = None
        self._stream: _HashingWriter | None = None
        self._tar: Any = None
        self._samples = 0
        self._bytes = 0

    def write(self, sample: Sample) -> str:
        """Write one sample; return the (store-relative) name of the shard that holds it."""
        if self._tar is not None and (self._samples >= self.max_samples or self._bytes >= self.max_bytes):
            self._close()
        if self._tar is None:
            import webdataset as wds  # here, not at import: it imports torch, seconds a worker need not spend

            self._file = self.store.open_atomic(self.name_for(self._part))
            self._stream = _HashingWriter(self._file.__enter__())
            self._tar = wds.TarWriter(self._stream, encoder=False, mtime=0, user="acav1m", group="acav1m")
        self._bytes += self._tar.write({"__key__": sample.key, **sample.members})
        self._samples += 1
        return self.name_for(self._part)

    def close(self) -> list[ShardStats]:
        """Finish the open shard; return the stats of every shard written."""
        if self._tar is not None:
            self._close()
        return self.finished

    def abort(self, error: BaseException) -> None:
        """Drop the open shard after ``error``: its temporary is removed and nothing appears under its name.

        ``error`` goes through the shard's `Store.open_atomic`, so a full disk
        comes back as `OutputFull` naming the shard.
        """
        file, tar, stream = self._file, self._tar, self._stream
        self._tar, self._stream, self._file = None, None, None
        if tar is not None and stream is not None:
            stream.inner = io.BytesIO()  # the dropped tar's last buffered bytes go nowhere, now and not at exit
            tar.close()
        if file is not None:
            file.__exit__(type(error), error, error.__traceback__)

    def _close(self) -> None:
        assert self._tar is not None and self._stream is not None
        self._tar.close()  # on an error here, abort() finishes the still-open file
        file, self._file = self._file, None
        file.__exit__(None, None, None)
        name = self.name_for(self._part)
        self.finished.append(ShardStats(name, self._samples, self._stream.count, self._stream.digest.hexdigest()))
        self._tar, self._stream, self._file, self._samples, self._bytes = None, None, None, 0, 0
        self._part += 1

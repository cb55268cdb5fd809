"""One command at a time per release folder: the lock that ``curate`` and the maintenance commands hold.

Two runs writing one folder would each take the other's units for their own
and remove each other's records; a removal switching files in while an
extension stages its own would lose one of them; a subset or a push reading
a folder mid-switch would copy old and new files together. So ``curate``,
``extend``, ``remove``, ``subset`` (on its source) and ``push`` take one
exclusive lock (``filelock``: ``flock`` on POSIX) before they read anything
in the folder and hold it to the end; a second command is refused at once
with "OUT is being written by process N" (the holder writes its process id
and host name into the lock file). The kernel drops the lock when its
holder dies, even by SIGKILL, so a killed command never blocks the rerun.
It lives here, in the release package, so that curation and the release
commands share it (``acav1m_hf`` never imports ``curation``).

Where the lock lives decides what it protects:

* **a local folder** (also NFS and other network disks with ``flock``):
  ``OUT/.acav1m.lock``, removed when the run ends. It excludes every process
  that sees the same folder, on any machine of the network disk.
* **an object store or other fsspec URL** (``s3://``, ``gs://``, ``hf://``,
  ``memory://``): object stores have no locks, so the lock is a local file
  under ``~/.cache/acav1m/locks/`` named after the URL. It excludes a second run
  *on the same machine* only: two machines writing one prefix are not
  stopped. Run one driver per output there (Ray workers do not take the
  lock; only the driver does).
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec
from filelock import FileLock, Timeout
from fsspec.implementations.local import LocalFileSystem

LOCK = ".acav1m.lock"
"""The lock file's name in a local output folder."""


class OutputBusy(RuntimeError):
    """Another process is writing the output folder."""


def lock_path(url: str | Path) -> Path:
    """Where the lock of the folder ``url`` lives: in it when it is local, else in this user's cache on this machine."""
    fs, root = fsspec.core.url_to_fs(str(url))
    if isinstance(fs, LocalFileSystem):
        Path(root).mkdir(parents=True, exist_ok=True)
        return Path(root) / LOCK
    url = fs.unstrip_protocol(root.rstrip("/") or "/")
    folder = Path.home() / ".cache" / "acav1m" / "locks"  # per user: a shared /tmp folder is another user's
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.lock"


@contextmanager
def output_lock(url: str | Path, shown: str | None = None) -> Iterator[None]:
    """Hold the lock of the folder ``url`` for the ``with`` block; raise `OutputBusy` naming the holder when another
    has it. ``shown`` is how messages name the folder (default: ``url``)."""
    path = lock_path(url)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputBusy(f"{shown or url} is being written by {_holder(path)}; wait for it to end") from None
    try:
        path.write_text(f"{os.getpid()}\n{socket.gethostname()}\n")  # the same inode: the lock stays held
        yield
    finally:
        path.unlink(missing_ok=True)  # filelock >= 4 makes a waiter that opened it retry on the live file
        lock.release()


def _holder(path: Path) -> str:
    """The holder as its lock file names it ("process N on HOST"), or "another process" while it is not written yet."""
    try:
        pid, host = path.read_text().split()[:2]
    except (OSError, ValueError):
        return "another process"
    return f"process {pid}" if host == socket.gethostname() else f"process {pid} on {host}"

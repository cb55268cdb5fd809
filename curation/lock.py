"""One run at a time per output folder: the lock that `curate` holds while it writes.

Two runs writing one folder would each take the other's units for their own
and remove each other's records. So `curate` takes an exclusive lock
(``filelock``: ``flock`` on POSIX) before it reads anything in the folder and
holds it to the end; a second run is refused at once with "OUT is being
written by process N" (the holder writes its process id and host name into
the lock file). The kernel drops the lock when its holder dies, even by
SIGKILL, so a killed run never blocks the rerun.

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

from filelock import FileLock, Timeout

from curation.writer import Store

LOCK = ".acav1m.lock"
"""The lock file's name in a local output folder."""


class OutputBusy(RuntimeError):
    """Another process is writing the output folder."""


def lock_path(store: Store) -> Path:
    """Where the lock of ``store`` lives: in the folder when it is local, else in this user's cache on this machine."""
    if store.local:
        store.makedirs("")
        return Path(store.path(LOCK))
    url = store.fs.unstrip_protocol(store.root)
    folder = Path.home() / ".cache" / "acav1m" / "locks"  # per user: a shared /tmp folder is another user's
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.lock"


@contextmanager
def output_lock(store: Store) -> Iterator[None]:
    """Hold the output's lock for the ``with`` block; raise `OutputBusy` naming the holder when another has it."""
    path = lock_path(store)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputBusy(f"{store.display()} is being written by {_holder(path)}; wait for it to end") from None
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

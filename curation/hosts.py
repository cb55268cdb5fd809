"""Per-host limits that hold across processes: slots and a start schedule, as lock files in the fetch cache.

Every process that fetches into one cache folder shares ``CACHE/hosts/``: the threads of one unit, local engine
workers, Ray tasks on one machine, two ``acav1m fetch`` runs (and the machines of a network disk with ``flock``). A
host has ``per_host`` slot files; a fetch holds one (``flock``, through filelock) while it talks to the host, so at
most ``per_host`` fetches to a host run at once, whoever runs them. The kernel drops a lock when its holder dies,
even by SIGKILL, so a killed run never keeps a slot. The starts of two fetches to a host are ``interval`` seconds
apart: the next allowed start is a wall-clock time in the host's ``schedule`` file, read and moved on under the
host's own lock. Lock files are kept (never unlinked), and a file system without ``flock`` is an error, not a
silent fallback to locks that a crash would leave behind.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

POLL_SECONDS = 0.05
"""How often a fetch waiting for a slot tries again (times a jitter, so that waiters do not move in step)."""


class HostLimits:
    """At most ``per_host`` fetches to one host at once and their starts ``interval`` seconds apart, under ``root``."""

    def __init__(
        self, root: str | Path, per_host: int, interval: float, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if per_host < 1:
            raise ValueError(f"per_host must be at least 1, got {per_host}")
        self.root, self.per_host, self.interval, self.sleep = Path(root), per_host, interval, sleep

    @contextmanager
    def turn(self, host: str) -> Iterator[None]:
        """Hold one of ``host``'s slots for the ``with`` block, entered no sooner than ``interval`` after the last."""
        folder = self.root / _file_name(host)
        folder.mkdir(parents=True, exist_ok=True)
        slot = self._slot(folder)
        try:
            wait = self._schedule(folder)
            if wait > 0:
                self.sleep(wait)
            yield
        finally:
            slot.release()

    def _slot(self, folder: Path) -> FileLock:
        """A free slot of the host, held; waits, polling, while all are held (by this process or others)."""
        while True:
            for index in random.sample(range(self.per_host), self.per_host):  # no slot is everyone's first try
                slot = FileLock(folder / f"slot-{index}.lock", timeout=0, preserve_lock_file=True)
                try:
                    slot.acquire()
                    return slot
                except Timeout:
                    continue
            time.sleep(POLL_SECONDS * random.uniform(0.5, 1.5))

    def _schedule(self, folder: Path) -> float:
        """Book the next start of the host; return how long to wait for it."""
        if self.interval <= 0:
            return 0.0
        schedule = folder / "schedule"
        with FileLock(folder / "schedule.lock", preserve_lock_file=True):
            now = time.time()
            try:
                booked = float(schedule.read_text(encoding="ascii"))
            except (FileNotFoundError, ValueError):
                booked = now
            start = max(now, booked)
            schedule.write_text(repr(start + self.interval), encoding="ascii")
        return start - now


def _file_name(host: str) -> str:
    """A host (``name:port``) as a folder name: what is not a letter, digit, dot or dash becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", host.lower()) or "_"

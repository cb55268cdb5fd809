"""The crash tests' hook: kill this process at an exact point of a run (curation or a release edit).

`crash_point` is called at the points a crash test needs (a sample written
with its part still open, a unit's record written, between two moves of
finalize, after the report, midway through the clean-up). Unset, it costs one
environment lookup.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

_CRASH_COUNTS: Counter[str] = Counter()


def crash_point(event: str) -> None:
    """SIGKILL this process at the n-th ``event`` when ``ACAV1M_TEST_CRASH=event:n`` is set (crash tests only).

    ``event:n:INT`` sends SIGINT instead, as a Ctrl-C at that point would.
    """
    wanted = os.environ.get("ACAV1M_TEST_CRASH")
    if not wanted:
        return
    name, _, rest = wanted.partition(":")
    if name != event:
        return
    count, _, signal_name = rest.partition(":")
    _CRASH_COUNTS[event] += 1
    if _CRASH_COUNTS[event] == int(count or 1):  # once: a stopped run that is continued goes on
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), getattr(signal, f"SIG{signal_name or 'KILL'}"))

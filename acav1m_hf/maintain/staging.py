"""Crash-safe edits of a release folder: the new files are staged beside the old ones, then switched in.

A maintenance command writes every new file under ``OUT/.maintain/`` (`Staging.path`), syncs them, and only then
writes ``OUT/.maintain/switch.json``, the list of files to replace and delete: that one atomic rename is the
moment the edit is decided. The staged files are then moved over the old ones (one ``os.replace`` each) and the
files to delete removed; ``switch.json`` is removed last but one, then the staging folder.

`recover` runs first in every maintenance command and repairs a killed one: with ``switch.json`` present the switch
is finished (each step is idempotent: a file already moved is no longer staged), without it the staged files are
dropped and the old release stands as it was. A reader that opens the folder during the switch itself may see old
and new files side by side. One command at a time edits a folder: each holds its lock (`acav1m_hf.lock`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from acav1m_hf.crash import crash_point
from acav1m_hf.release import write_atomic

STAGING = ".maintain"
SWITCH = "switch.json"


def recover(root: Path) -> str | None:
    """Finish or undo an interrupted edit of ``root``; say which (``"completed"``, ``"rolled back"``), or None."""
    staging = root / STAGING
    if (staging / SWITCH).exists():
        _switch(root)
        return "completed"
    if staging.exists():
        shutil.rmtree(staging)
        return "rolled back"
    return None


class Staging:
    """The new files of one edit of ``root``, written under `STAGING` until `commit` switches them in."""

    def __init__(self, root: Path) -> None:
        if (root / STAGING).exists():
            raise RuntimeError(f"{root / STAGING}: an interrupted edit is pending; run recover first")
        self.root = root
        self.folder = root / STAGING
        self.staged: list[str] = []

    def path(self, rel: str) -> Path:
        """Where to write the new ``rel`` (relative to the release root); it replaces ``root/rel`` at `commit`."""
        path = self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.staged.append(rel)
        return path

    def link(self, rel: str, source: Path) -> None:
        """Stage the finished file ``source`` (in the same folder tree) as the new ``rel`` without copying its bytes:
        a hard link, so that ``source`` stays where it is if the edit is rolled back (a copy where links fail)."""
        path = self.path(rel)
        path.unlink(missing_ok=True)
        try:
            os.link(source, path)
        except OSError:  # a filesystem without hard links
            shutil.copyfile(source, path)
        crash_point("maintain_stage")

    def write(self, rel: str, data: bytes | str) -> None:
        path = self.path(rel)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        crash_point("maintain_stage")

    def commit(self, delete: list[str]) -> None:
        """Sync the staged files, record the switch (the point of no return), then switch them in."""
        for rel in self.staged:
            with open(self.folder / rel, "rb") as f:
                os.fsync(f.fileno())
        switch = {"replace": sorted(self.staged), "delete": sorted(delete)}
        write_atomic(self.folder / SWITCH, json.dumps(switch, indent=2) + "\n")
        crash_point("maintain_switch")
        _switch(self.root)


def _switch(root: Path) -> None:
    staging = root / STAGING
    switch = json.loads((staging / SWITCH).read_text(encoding="utf-8"))
    for rel in switch["replace"]:
        staged = staging / rel
        if staged.exists():  # absent: moved before a kill
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, root / rel)
            crash_point("maintain_replace")
    for rel in switch["delete"]:
        (root / rel).unlink(missing_ok=True)
    (staging / SWITCH).unlink()
    shutil.rmtree(staging)

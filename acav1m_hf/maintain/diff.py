"""``acav1m diff OLD NEW``: the clips added, removed and changed between two releases, from their Parquet indexes.

A clip is its key; it changed when any index column other than ``shard`` (where it lies, which a removal or a
subset may move) differs. Only the indexes are read, so two releases on a laptop compare in seconds whatever their
size; a change of a member's bytes that leaves the metadata alone is not seen (``croissant.json``'s sha256 values
show which shards differ).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acav1m_hf import release
from acav1m_hf.facts import ReleaseFacts
from acav1m_hf.schema import SPLITS

MOVED_ONLY = frozenset({"shard"})
"""Index columns that say where a clip lies, not what it is: a difference there alone is no change."""


@dataclass(frozen=True)
class ReleaseDiff:
    """Versions of both releases, the keys added and removed, and each changed key with the columns that differ."""

    old_version: str
    new_version: str
    added: list[str]
    removed: list[str]
    changed: dict[str, list[str]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseDiff:
        return cls(**{**data, "changed": {k: list(v) for k, v in data["changed"].items()}})

    def lines(self) -> list[str]:
        """``+ key``, ``- key`` and ``~ key: columns`` lines after a one-line summary."""
        head = (
            f"{self.old_version} -> {self.new_version}: {len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.changed)} changed"
        )
        return [
            head,
            *(f"+ {key}" for key in self.added),
            *(f"- {key}" for key in self.removed),
            *(f"~ {key}: {', '.join(columns)}" for key, columns in self.changed.items()),
        ]


def _rows(root: Path) -> dict[str, dict[str, Any]]:
    import pyarrow.parquet as pq

    paths = [root / release.index_name(s) for s in SPLITS if (root / release.index_name(s)).exists()]
    if not paths:
        raise FileNotFoundError(f"{root}: no index under {release.METADATA_DIR}/; is this a release folder?")
    return {row["key"]: row for path in paths for row in pq.read_table(path).to_pylist()}


def diff_releases(old: str | Path, new: str | Path) -> ReleaseDiff:
    """What changed from the release folder ``old`` to ``new`` (keys sorted)."""
    old, new = Path(old), Path(new)
    before, after = _rows(old), _rows(new)
    changed = {}
    for key in sorted(before.keys() & after.keys()):
        columns = sorted(
            c
            for c in before[key].keys() | after[key].keys()
            if c not in MOVED_ONLY and before[key].get(c) != after[key].get(c)
        )
        if columns:
            changed[key] = columns
    return ReleaseDiff(
        ReleaseFacts.read(old, checksums=False).curation.release_version,
        ReleaseFacts.read(new, checksums=False).curation.release_version,
        sorted(after.keys() - before.keys()),
        sorted(before.keys() - after.keys()),
        changed,
    )

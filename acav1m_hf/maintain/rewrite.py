"""What a maintenance edit rewrites: a shard without some clips, an index without their rows, the card and Croissant.

A rewritten shard keeps the kept members' headers and bytes as they were, in the same order, in the same tar format
(PAX, streamed, as curation's writer writes), so the same edit always gives the same bytes, and a shard that loses
no clip would come out byte-identical. The card and Croissant are rendered by `acav1m_hf.card.render` and
`acav1m_hf.croissant.render` from `acav1m_hf.facts.ReleaseFacts`, exactly as curation renders them.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from acav1m_hf import strict_json
from acav1m_hf.facts import FileFacts, IndexFacts, ReleaseFacts
from acav1m_hf.release import CARD, CROISSANT, file_sha256
from acav1m_hf.schema import split_member_name

INDEX_ROW_GROUP = 50_000
"""Rows per Parquet row group of a rewritten index, as curation's finalize writes them."""


def copy_shard(source: Path, target: Path, keep: Collection[str]) -> int:
    """Write to ``target`` the members of the shard ``source`` whose key is in ``keep``; return the samples kept."""
    kept: set[str] = set()
    with tarfile.open(source, "r:") as tar_in, open(target, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
        for member in tar_in:
            key, _ = split_member_name(member.name)
            if key in keep:
                tar.addfile(member, tar_in.extractfile(member))
                kept.add(key)
    return len(kept)


def index_bytes(table: Any) -> bytes:
    """The bytes of a Parquet index holding ``table`` (deterministic for the same rows)."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, table.schema) as writer:
        for start in range(0, max(table.num_rows, 1), INDEX_ROW_GROUP):
            writer.write_table(table.slice(start, INDEX_ROW_GROUP))
    return buffer.getvalue()


def file_facts(rel: str, path: Path) -> FileFacts:
    """The facts of the file that will be ``rel`` in the release, read from where it is now (staged or in place)."""
    return FileFacts(rel, path.stat().st_size, file_sha256(path))


def report_text(report: Mapping[str, Any]) -> str:
    """``report.json`` as curation writes it (sorted keys, two-space indent, final newline)."""
    return strict_json.dumps(dict(report), indent=2, sort_keys=True) + "\n"


def split_totals(facts: ReleaseFacts) -> dict[str, dict[str, Any]]:
    """The report's ``splits`` (clips, seconds, shards, bytes per split with clips) as the files now show them."""
    return {
        name: {"bytes": split.bytes, "clips": split.clips, "seconds": split.seconds, "shards": len(split.shards)}
        for name, split in facts.with_shards.items()
        if split.clips
    }


def card_and_croissant(facts: ReleaseFacts) -> dict[str, str]:
    """The card's and the Croissant's text for the release that ``facts`` describe, by release path."""
    from acav1m_hf import card, croissant

    return {CARD: card.render(facts), CROISSANT: croissant.dumps(croissant.render(facts))}


def build_facts(report: Mapping[str, Any], shards: list[FileFacts], indexes: Mapping[str, bytes]) -> ReleaseFacts:
    """`ReleaseFacts` of a release about to be written: its report, shards (in order) and each split's index bytes."""
    return ReleaseFacts.build(report, shards, {s: IndexFacts.from_bytes(s, data) for s, data in indexes.items()})

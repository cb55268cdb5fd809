"""Near-duplicate removal over the whole run, between processing the units and finalize.

A profile that embeds clips (``paper``) gives each kept clip a vector, stored
in its unit's record (`UnitRecord.vectors`). Once every unit is done,
duplicates are searched over all of them in plan order
(`curation.models.dedup.near_duplicates`: a clip is a duplicate of the most
similar earlier kept clip when their cosine reaches ``config.dedup_threshold``;
units in plan order, keys sorted within a unit). Each duplicate is removed
from its shard part, which is rewritten, and from the unit's vectors; the
unit's record, read and rewritten through `curation.ledger`, names it with the
clip it duplicates and counts it as rejected (``near_duplicate``). A rerun after a crash finds
nothing more to remove. One residual difference from an uninterrupted run:
when ``--retry-failed`` brings back an earlier unit, a clip removed before as
a duplicate of a clip that the returning unit now duplicates stays removed.

Only finished unit parts are touched, never a final shard. A part is rewritten
in memory, so this needs up to twice ``shard_max_bytes``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from acav1m_hf.schema import split_member_name
from curation import ledger
from curation.config import CurationConfig
from curation.models.dedup import clip_vector, near_duplicates
from curation.plan import Unit
from curation.records import InputLine, PartRecord, Sample, UnitRecord
from curation.writer import Store

NEAR_DUPLICATE = "near_duplicate"
"""The rejection reason of a near-duplicate clip."""


def sample_vector(sample: Sample) -> str | None:
    """A written clip's audio-visual direction as base64 float16, for its unit's record; None if it has none."""
    rows = sample.metadata["embeddings"]["rows"]
    if "npy" not in sample.members or not {"audio", "visual"} <= set(rows):
        return None
    embeddings = np.load(io.BytesIO(sample.members["npy"]), allow_pickle=False)
    return base64.b64encode(clip_vector(embeddings, rows).astype(np.float16).tobytes()).decode("ascii")


def deduplicate(
    store: Store, units: list[Unit], config: CurationConfig, earlier: Iterable[tuple[str, str]] = ()
) -> int:
    """Remove near-duplicates from the finished ``units`` (in plan order); return how many were removed.

    ``earlier``: (key, `sample_vector`) of kept clips that come before the units and are never removed (the clips of
    the release that ``acav1m extend`` extends)."""
    if config.dedup_threshold is None:
        return 0
    keys: list[str] = []
    vectors: list[np.ndarray] = []
    for key, encoded in earlier:
        keys.append(key)
        vectors.append(_decoded(encoded))
    for unit in units:
        record = ledger.read_done(store, unit)
        for key, encoded in sorted(record.vectors.items() if record else []):
            keys.append(key)
            vectors.append(_decoded(encoded))
    duplicates = near_duplicates(keys, np.stack(vectors), config.dedup_threshold) if keys else {}
    removed = 0
    for unit in units:
        record = ledger.read_done(store, unit)
        drop = {row["key"] for row in record.rows} & set(duplicates) if record else set()
        if not record or not drop:
            continue
        of = {key: duplicates[key] for key in sorted(drop)}
        ledger.write_record(store, _without(store, record, set(of), NEAR_DUPLICATE, of))
        removed += len(drop)
    return removed


def drop_clips(store: Store, units: list[Unit], keys: set[str], reason: str) -> int:
    """Remove the clips ``keys`` from the finished ``units``, as near-duplicates are removed, counted as rejected for
    ``reason`` (``acav1m extend``: a new clip whose key the release already holds); return how many."""
    removed = 0
    for unit in units:
        record = ledger.read_done(store, unit)
        drop = {row["key"] for row in record.rows} & keys if record else set()
        if record and drop:
            ledger.write_record(store, _without(store, record, drop, reason))
            removed += len(drop)
    return removed


def _decoded(encoded: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), dtype=np.float16).astype(np.float32)


def _without(
    store: Store,
    record: UnitRecord,
    drop: set[str],
    reason: str,
    duplicates: Mapping[str, tuple[str, float]] | None = None,
) -> UnitRecord:
    """The unit's record once the clips ``drop`` are removed from its parts (rewritten) and counted as rejected for
    ``reason``; ``duplicates`` names the clip each near-duplicate duplicates."""
    parts = []
    for part in record.parts:
        kept = _rewrite_part(store, ledger.part_file(part.part), drop)
        if kept is not None:
            parts.append(PartRecord(part.part, *kept))
    gone = [row for row in record.rows if row["key"] in drop]
    clips = dict(record.clips)
    clips["kept"] = clips.get("kept", 0) - len(gone)
    clips[reason] = clips.get(reason, 0) + len(gone)
    return replace(
        record,
        parts=parts,
        rows=[row for row in record.rows if row["key"] not in drop],
        clips=clips,
        inputs=[_less(line, sum(1 for row in gone if _cut_from(row, line)), reason) for line in record.inputs],
        vectors={key: v for key, v in record.vectors.items() if key not in drop},
        duplicates={**record.duplicates, **{key: list(of) for key, of in (duplicates or {}).items()}},
    )


def _less(line: InputLine, lost: int, reason: str) -> InputLine:
    """An input's line with ``lost`` of its clips removed for ``reason`` (rejected once none is left)."""
    if not lost:
        return line
    rejected = {**line.clips_rejected, reason: line.clips_rejected.get(reason, 0) + lost}
    line = replace(line, clips=line.clips - lost, clips_rejected=rejected)
    return replace(line, outcome="rejected", reason=reason) if line.clips == 0 else line


def _cut_from(row: dict[str, Any], line: InputLine) -> bool:
    """Whether an index row is a clip of the input of an ``inputs.jsonl`` line (same video, inside its window)."""
    start = row["source.start"]
    return (
        row["source.video_id"] == line.video_id
        and (line.start is None or start >= line.start - 1e-3)
        and (line.end is None or start < line.end)
    )


def _rewrite_part(store: Store, rel: str, drop: set[str]) -> tuple[int, int, str] | None:
    """Rewrite a tar without the samples ``drop``; return its samples, bytes and sha256, or None (and delete it) when empty."""
    out = io.BytesIO()
    samples: set[str] = set()
    with (
        tarfile.open(fileobj=io.BytesIO(store.read_bytes(rel))) as source,
        tarfile.open(fileobj=out, mode="w|") as target,
    ):
        for info in source:
            key, _ = split_member_name(info.name)
            if key not in drop:
                target.addfile(info, source.extractfile(info))
                samples.add(key)
    if not samples:
        store.remove(rel)
        return None
    data = out.getvalue()
    store.write_atomic(rel, data)
    return len(samples), len(data), hashlib.sha256(data).hexdigest()

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


def sample_vector(sample: Sample) -> str | None:
    """A written clip's audio-visual direction as base64 float16, for its unit's record; None if it has none."""
    rows = sample.metadata["embeddings"]["rows"]
    if "npy" not in sample.members or not {"audio", "visual"} <= set(rows):
        return None
    embeddings = np.load(io.BytesIO(sample.members["npy"]), allow_pickle=False)
    return base64.b64encode(clip_vector(embeddings, rows).astype(np.float16).tobytes()).decode("ascii")


def deduplicate(store: Store, units: list[Unit], config: CurationConfig) -> int:
    """Remove near-duplicates from the finished ``units`` (in plan order); return how many were removed."""
    if config.dedup_threshold is None:
        return 0
    keys: list[str] = []
    vectors: list[np.ndarray] = []
    for unit in units:
        record = ledger.read_done(store, unit)
        for key, encoded in sorted(record.vectors.items() if record else []):
            keys.append(key)
            vectors.append(np.frombuffer(base64.b64decode(encoded), dtype=np.float16).astype(np.float32))
    duplicates = near_duplicates(keys, np.stack(vectors), config.dedup_threshold) if keys else {}
    removed = 0
    for unit in units:
        record = ledger.read_done(store, unit)
        drop = {row["key"] for row in record.rows} & set(duplicates) if record else set()
        if not record or not drop:
            continue
        ledger.write_record(store, _without(store, record, {key: duplicates[key] for key in sorted(drop)}))
        removed += len(drop)
    return removed


def _without(store: Store, record: UnitRecord, duplicates: dict[str, tuple[str, float]]) -> UnitRecord:
    """The unit's record once its ``duplicates`` are removed from its parts (rewritten) and counted as rejected."""
    parts = []
    for part in record.parts:
        kept = _rewrite_part(store, ledger.part_file(part.part), set(duplicates))
        if kept is not None:
            parts.append(PartRecord(part.part, *kept))
    gone = [row for row in record.rows if row["key"] in duplicates]
    clips = dict(record.clips)
    clips["kept"] = clips.get("kept", 0) - len(gone)
    clips["near_duplicate"] = clips.get("near_duplicate", 0) + len(gone)
    return replace(
        record,
        parts=parts,
        rows=[row for row in record.rows if row["key"] not in duplicates],
        clips=clips,
        inputs=[_less(line, sum(1 for row in gone if _cut_from(row, line))) for line in record.inputs],
        vectors={key: v for key, v in record.vectors.items() if key not in duplicates},
        duplicates={**record.duplicates, **{key: list(of) for key, of in duplicates.items()}},
    )


def _less(line: InputLine, lost: int) -> InputLine:
    """An input's line with ``lost`` of its clips removed as near-duplicates (rejected once none is left)."""
    if not lost:
        return line
    rejected = {**line.clips_rejected, "near_duplicate": line.clips_rejected.get("near_duplicate", 0) + lost}
    line = replace(line, clips=line.clips - lost, clips_rejected=rejected)
    return replace(line, outcome="rejected", reason="near_duplicate") if line.clips == 0 else line


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

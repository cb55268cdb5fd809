"""Near-duplicate removal over the whole run, between processing the units and finalize.

A profile that embeds clips (``paper``) gives each kept clip a vector, stored
in its unit's summary. Once every unit is done, duplicates are searched over
all of them in plan order (`curation.models.dedup.near_duplicates`: a clip is
a duplicate of the most similar earlier kept clip when their cosine reaches
``config.dedup_threshold``; units in plan order, keys sorted within a unit).
Each duplicate is removed from its shard part, which is rewritten, and from
the unit's vectors; the unit's summary records it with the clip it duplicates
and counts it as rejected (``near_duplicate``). A rerun after a crash finds
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
from collections.abc import Callable
from typing import Any

import numpy as np

from acav1m_hf.schema import split_member_name
from curation.config import CurationConfig
from curation.models.dedup import clip_vector, near_duplicates
from curation.records import Sample
from curation.writer import Store

Summary = dict[str, Any]


def sample_vector(sample: Sample) -> str | None:
    """A written clip's audio-visual direction as base64 float16, for its unit's summary; None if it has none."""
    rows = sample.metadata["embeddings"]["rows"]
    if "npy" not in sample.members or not {"audio", "visual"} <= set(rows):
        return None
    embeddings = np.load(io.BytesIO(sample.members["npy"]), allow_pickle=False)
    return base64.b64encode(clip_vector(embeddings, rows).astype(np.float16).tobytes()).decode("ascii")


def deduplicate(
    store: Store,
    names: list[str],
    load: Callable[[str], Summary],
    save: Callable[[str, Summary], None],
    config: CurationConfig,
) -> int:
    """Remove near-duplicates from the finished units ``names`` (in plan order); return how many were removed."""
    if config.dedup_threshold is None:
        return 0
    keys: list[str] = []
    vectors: list[np.ndarray] = []
    for name in names:
        for key, encoded in sorted(load(name).get("vectors", {}).items()):
            keys.append(key)
            vectors.append(np.frombuffer(base64.b64decode(encoded), dtype=np.float16).astype(np.float32))
    duplicates = near_duplicates(keys, np.stack(vectors), config.dedup_threshold) if keys else {}
    removed = 0
    for name in names:
        summary = load(name)
        drop = {row["key"] for row in summary["rows"]} & set(duplicates)
        if not drop:
            continue
        _remove_from_unit(store, summary, {key: duplicates[key] for key in sorted(drop)})
        save(name, summary)
        removed += len(drop)
    return removed


def _remove_from_unit(store: Store, summary: Summary, duplicates: dict[str, tuple[str, float]]) -> None:
    parts = []
    for part in summary["parts"]:
        kept = _rewrite_part(store, f"_work/{part['part']}", set(duplicates))
        if kept is not None:
            parts.append({"part": part["part"], **kept})
    gone = [row for row in summary["rows"] if row["key"] in duplicates]
    summary["parts"] = parts
    summary["rows"] = [row for row in summary["rows"] if row["key"] not in duplicates]
    summary["clips"]["kept"] = summary["clips"].get("kept", 0) - len(gone)
    summary["clips"]["near_duplicate"] = summary["clips"].get("near_duplicate", 0) + len(gone)
    for line in summary["inputs"]:
        lost = sum(1 for row in gone if _cut_from(row, line))
        if lost:
            line["clips"] -= lost
            line["clips_rejected"]["near_duplicate"] = line["clips_rejected"].get("near_duplicate", 0) + lost
            if line["clips"] == 0:
                line.update(outcome="rejected", reason="near_duplicate")
    summary["vectors"] = {key: v for key, v in summary.get("vectors", {}).items() if key not in duplicates}
    summary["duplicates"] = {**summary.get("duplicates", {}), **{key: list(of) for key, of in duplicates.items()}}


def _cut_from(row: dict[str, Any], line: dict[str, Any]) -> bool:
    """Whether an index row is a clip of the input of an ``inputs.jsonl`` line (same video, inside its window)."""
    start = row["source.start"]
    return (
        row["source.video_id"] == line["video_id"]
        and (line.get("start") is None or start >= line["start"] - 1e-3)
        and (line.get("end") is None or start < line["end"])
    )


def _rewrite_part(store: Store, rel: str, drop: set[str]) -> dict[str, Any] | None:
    """Rewrite a tar without the samples ``drop``; return its new stats, or None (and delete it) when it is empty."""
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
    return {"samples": len(samples), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

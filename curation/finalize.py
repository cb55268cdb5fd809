"""Finalize: the units' records and parts → the release (``data/``, ``metadata/``, ``inputs.jsonl``, report, card).

Parts move to ``data/{split}-{n:05d}.tar`` in plan order; the index rows go
to one Parquet file per split; every input's line goes to ``inputs.jsonl``;
the counts go to ``report.json``; then the dataset card and ``croissant.json``
are written, and last the ledger's finalize record. Records are read one unit
at a time, so the driver's memory does not grow with the number of clips.

Idempotent: a crash anywhere in it is repaired by a rerun (the ledger moves
the parts back first, `curation.ledger.recall_parts`).
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from typing import Any

from acav1m_hf import release, strict_json
from acav1m_hf.schema import SCHEMA_VERSION, SPLITS, arrow_schema
from curation import __version__, ledger
from curation.calibration import calibration_maps, calibration_state
from curation.config import CurationConfig
from curation.crash import crash_point
from curation.inputs import InputProblem, problem_line
from curation.models.licences import model_licences
from curation.plan import Unit
from curation.profiles import aligner_name, profile_settings
from curation.records import CurationError, InputLine, UnitFailure, UnitRecord
from curation.writer import Store

INDEX_ROW_GROUP = 50_000
"""Rows per Parquet row group: finalize holds at most this many index rows in memory."""


class Totals:
    """The report's counts, accumulated one unit at a time (by finalize, and by ``extend`` for what it adds)."""

    def __init__(self) -> None:
        self.clips: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.input_reasons: Counter[str | None] = Counter()
        self.judged: Counter[str] = Counter()
        self.passed: Counter[str] = Counter()
        self.realigned = 0
        self.analysed = 0
        self.retryable: Counter[str] = Counter()
        self.failed_units: list[UnitFailure] = []
        self.duplicates: dict[str, list[Any]] = {}

    def add_lines(self, lines: list[InputLine]) -> None:
        for line in lines:
            self.outcomes[line.outcome] += 1
            if line.outcome == "rejected":
                self.input_reasons[line.reason] += 1

    def add_record(self, record: UnitRecord) -> None:
        self.add_lines(record.inputs)
        self.clips.update(record.clips)
        for verdicts in record.filters:
            for name in ("language", "instance", "temporal"):
                passed = getattr(verdicts, name)
                if passed is not None:
                    self.judged[name] += 1
                    self.passed[name] += passed
            self.realigned += bool(verdicts.realigned)
            self.analysed += 1
        self.retryable.update(record.retryable)
        if record.failed is not None:
            self.failed_units.append(record.failed)
        self.duplicates.update(record.duplicates)


def finalize(
    store: Store,
    units: list[Unit],
    problems: list[InputProblem],
    config: CurationConfig,
    fingerprint: str,
) -> dict[str, Any]:
    """Turn finished units into the release; return the report.

    Holds at most `INDEX_ROW_GROUP` index rows. Writes ``report.json`` after
    the shards and indexes, and the finalize record after the card and
    Croissant, so that the presence of the latter means the release is whole.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    totals = Totals()
    schema = arrow_schema()
    splits: dict[str, dict[str, Any]] = {}
    shard_counters: Counter[str] = Counter()
    shard_info: dict[str, tuple[int, str]] = {}
    written_indexes: set[str] = set()
    with ExitStack() as stack:
        inputs_file = stack.enter_context(store.open_atomic(release.INPUTS))
        writers: dict[str, Any] = {}
        buffers: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}

        def flush(split: str) -> None:
            if not buffers[split]:
                return
            if split not in writers:
                handle = stack.enter_context(store.open_atomic(release.index_name(split)))
                writers[split] = stack.enter_context(pq.ParquetWriter(handle, schema))
                written_indexes.add(split)
            writers[split].write_table(pa.Table.from_pylist(buffers[split], schema=schema))
            buffers[split] = []

        def write_lines(lines: list[InputLine]) -> None:
            for line in lines:
                inputs_file.write((strict_json.dumps(line.to_dict(), sort_keys=True) + "\n").encode("utf-8"))

        for unit in units:
            record = ledger.read_record(store, unit)
            if record is None:
                raise CurationError(f"{store.display()}: unit {unit.name} has neither a result nor a failure record")
            split = unit.split
            stats = splits.setdefault(split, {"clips": 0, "seconds": 0, "shards": 0, "bytes": 0})
            shard_of = {}
            for part in record.parts:
                final = release.shard_name(split, shard_counters[split])
                shard_counters[split] += 1
                source = ledger.part_file(part.part)
                if store.exists(source):
                    store.move(source, final)
                    crash_point("finalize_move")
                elif store.size(final) != part.bytes:
                    raise CurationError(f"{store.display()}: shard part {part.part} of unit {unit.name} is missing")
                shard_of[part.part] = final
                shard_info[final] = (part.bytes, part.sha256)
                stats["shards"] += 1
                stats["bytes"] += part.bytes
            for row in record.rows:
                buffers[split].append({**{k: v for k, v in row.items() if k != "part"}, "shard": shard_of[row["part"]]})
                stats["clips"] += 1
                stats["seconds"] += row["clip.duration"]
                if len(buffers[split]) >= INDEX_ROW_GROUP:
                    flush(split)
            write_lines(record.inputs)
            totals.add_record(record)
        for split in SPLITS:
            flush(split)
        lines = [problem_line(p) for p in problems]
        write_lines(lines)
        totals.add_lines(lines)
    for split in SPLITS:
        if split not in written_indexes:
            store.remove(release.index_name(split))  # left by an earlier finalize of a retried run
    splits = {
        split: {**stats, "seconds": round(stats["seconds"], 3)} for split, stats in splits.items() if stats["clips"]
    }
    text = strict_json.dumps(_report(totals, splits, config, fingerprint), indent=2, sort_keys=True) + "\n"
    report = json.loads(text)  # what a rerun returns too (JSON lists, not tuples)
    store.write_atomic(release.REPORT, text)
    crash_point("finalize_report")
    _write_card_and_croissant(store, report, shard_info)
    retained = bool(totals.failed_units or any(totals.retryable.values()))
    ledger.mark_finalized(store, retained)
    if not retained:
        ledger.remove_work(store, units)
    return report


def _report(
    totals: Totals, splits: dict[str, dict[str, Any]], config: CurationConfig, fingerprint: str
) -> dict[str, Any]:
    pass_rates: dict[str, float | None] = {}
    for name in ("language", "instance", "temporal"):
        judged = totals.judged[name]
        pass_rates[name] = round(totals.passed[name] / judged, 6) if judged else None
    clips = Counter(totals.clips)
    kept_clips = clips.pop("kept", 0)
    return {
        "acav1m_version": __version__,
        "schema": SCHEMA_VERSION,
        "plan": fingerprint,
        "config": config.to_dict(),
        "profile_settings": profile_settings(config),
        "calibration": calibration_state(aligner_name(config), config),
        "calibration_maps": calibration_maps(aligner_name(config), config),
        "model_licences": model_licences(config.profile),
        "counts": {
            "inputs": {
                "total": sum(totals.outcomes.values()),
                "kept": totals.outcomes["kept"],
                "rejected": totals.outcomes["rejected"],
            },
            "clips": {"total": kept_clips + sum(clips.values()), "kept": kept_clips, "rejected": sum(clips.values())},
        },
        "reasons": {
            "inputs": dict(sorted(totals.input_reasons.items())),
            "clips": dict(sorted(clips.items())),
        },
        "splits": splits,
        "pass_rates": pass_rates,
        "filter_counts": {n: {"judged": totals.judged[n], "passed": totals.passed[n]} for n in pass_rates},
        "realigned": totals.realigned,
        "analysed_clips": totals.analysed,
        "retryable": {"inputs": totals.retryable["inputs"], "clips": totals.retryable["clips"]},
        "failed_units": [failure.to_dict() for failure in totals.failed_units],
        "near_duplicates": dict(sorted(totals.duplicates.items())),
    }


def _write_card_and_croissant(store: Store, report: dict[str, Any], shard_info: dict[str, tuple[int, str]]) -> None:
    """The card and Croissant, rendered from the release's facts as finalize holds them (no shard is read back).

    The shards are described by the sizes and sha256 in the units' records; a
    shard in ``data/`` that this run did not write is measured through the store,
    as reading the folder would. The indexes are read back through the store (one
    read each: size, sha256 and the columns the facts summarise).
    """
    from acav1m_hf import card, croissant
    from acav1m_hf.facts import FileFacts, IndexFacts, ReleaseFacts

    shards = []
    for name in store.listdir(release.DATA_DIR):
        match = release.SHARD_PATTERN.match(name)
        if match is None or match["split"] not in SPLITS:
            continue
        rel = f"{release.DATA_DIR}/{name}"
        size, sha256 = shard_info[rel] if rel in shard_info else (store.size(rel) or 0, store.sha256(rel))
        shards.append(FileFacts(rel, size, sha256))
    indexes = {
        split: IndexFacts.from_bytes(split, store.read_bytes(release.index_name(split)))
        for split in SPLITS
        if store.exists(release.index_name(split))
    }
    facts = ReleaseFacts.build(report, shards, indexes)
    store.write_atomic(release.CARD, card.render(facts))
    if shard_info:
        store.write_atomic(release.CROISSANT, croissant.dumps(croissant.render(facts)))
    else:  # nothing kept: a card that says so, and no Croissant (it describes files that do not exist)
        store.remove(release.CROISSANT)

"""An extension's finished units written into the release it extends, as one staged edit (`acav1m extend`).

The units' parts become new shards numbered after the highest shard of their split (a removal may have left gaps:
no name is reused), staged as hard links (`acav1m_hf.maintain.staging.Staging.link`: no copy of their bytes, and
the parts stay in the extension's work folder if the edit is rolled back). The existing shards are not opened. Each
split's index gets the new rows after its own; ``inputs.jsonl`` gets one line per new input after its own (the
units' lines in plan order, then the inputs that never became items, as curate writes them); ``report.json``'s
counts, reasons, filter counts and pass rates, re-aligned and analysed clips, transient failures and
near-duplicates add the extension's (`curation.finalize.Totals`); the card and the Croissant are rendered again;
``CHANGELOG.md`` gets the version's section. Nothing appears in the release until `Staging.commit`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acav1m_hf import release, strict_json
from acav1m_hf.facts import FileFacts
from acav1m_hf.maintain import rewrite, versions
from acav1m_hf.maintain.staging import Staging
from acav1m_hf.schema import SPLITS, arrow_schema
from curation import ledger
from curation.deduplicate import NEAR_DUPLICATE
from curation.finalize import Totals
from curation.inputs import InputProblem, problem_line
from curation.plan import Unit
from curation.writer import Store


@dataclass(frozen=True)
class Extension:
    """What an extension added: its version, the clips kept, the input lines recorded (those already in the release
    among them), the near-duplicates removed, and the new shards."""

    version: str
    clips: int
    inputs: int
    duplicate_inputs: int
    near_duplicates: int
    shards: list[str]

    def changelog_text(self) -> str:
        return (
            f"Extended with {self.clips} clip(s) from {self.inputs} input(s); "
            f"{self.duplicate_inputs} of them already in the release (duplicate_input); "
            f"{self.near_duplicates} near-duplicate clip(s) removed. New shards: {', '.join(self.shards) or 'none'}."
        )


def write_extension(
    root: Path,
    store: Store,
    units: list[Unit],
    problems: list[InputProblem],
    report: dict[str, Any],
    version: str,
    date: str,
) -> Extension:
    """Stage and switch in the release ``root`` extended by the finished ``units`` of ``store`` and the input
    ``problems``; ``report`` is the release's, ``version`` and ``date`` the new version's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    staging = Staging(root)
    existing = release.list_shards(root)
    next_n = {split: 1 + max(_number(p.name) for p in paths) for split, paths in existing.items()}
    totals = Totals()
    rows: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    added: dict[str, list[FileFacts]] = {split: [] for split in SPLITS}
    lines = []
    for unit in units:
        record = ledger.read_done(store, unit)
        assert record is not None, unit.name  # extend stops before here when a unit has no result
        shard_of = {}
        for part in record.parts:
            n = next_n.get(unit.split, 0)
            next_n[unit.split] = n + 1
            shard_of[part.part] = release.shard_name(unit.split, n)
            staging.link(shard_of[part.part], Path(store.path(ledger.part_file(part.part))))
            added[unit.split].append(FileFacts(shard_of[part.part], part.bytes, part.sha256))
        rows[unit.split] += [
            {**{k: v for k, v in r.items() if k != "part"}, "shard": shard_of[r["part"]]} for r in record.rows
        ]
        lines += record.inputs
        totals.add_record(record)
    problem_lines = [problem_line(p) for p in problems]
    totals.add_lines(problem_lines)
    lines += problem_lines

    indexes: dict[str, bytes] = {}
    for split in SPLITS:
        path = root / release.index_name(split)
        if rows[split]:
            new = pa.Table.from_pylist(rows[split], schema=arrow_schema())
            table = pa.concat_tables([pq.read_table(path).cast(new.schema), new]) if path.exists() else new
            indexes[split] = rewrite.index_bytes(table)
            staging.write(release.index_name(split), indexes[split])
        elif path.exists():
            indexes[split] = path.read_bytes()

    report = _report_with(report, totals, version, date)
    shards: list[FileFacts] = []
    for split in SPLITS:  # as the folder will list them: split by split, the new shards after the old
        shards += [rewrite.file_facts(p.relative_to(root).as_posix(), p) for p in existing.get(split, [])]
        shards += added[split]
    report["splits"] = rewrite.split_totals(rewrite.build_facts(report, shards, indexes))
    for rel, text in rewrite.card_and_croissant(rewrite.build_facts(report, shards, indexes)).items():
        staging.write(rel, text)
    staging.write(release.REPORT, rewrite.report_text(report))
    old_inputs = (root / release.INPUTS).read_text(encoding="utf-8")
    staging.write(
        release.INPUTS, old_inputs + "".join(strict_json.dumps(line.to_dict(), sort_keys=True) + "\n" for line in lines)
    )
    extension = Extension(
        version,
        totals.clips["kept"],
        len(lines),
        totals.input_reasons["duplicate_input"],
        totals.clips[NEAR_DUPLICATE],
        [facts.path for split in SPLITS for facts in added[split]],
    )
    changelog = root / versions.CHANGELOG
    old_changelog = changelog.read_text(encoding="utf-8") if changelog.exists() else None
    staging.write(versions.CHANGELOG, versions.add_entry(old_changelog, version, date, extension.changelog_text()))
    staging.commit([])
    return extension


def _number(name: str) -> int:
    """``n`` of a shard named ``{split}-{n:05d}.tar`` (`acav1m_hf.release.list_shards` lists only such names)."""
    match = release.SHARD_PATTERN.match(name)
    assert match is not None, name
    return int(match["n"])


def _report_with(report: dict[str, Any], totals: Totals, version: str, date: str) -> dict[str, Any]:
    """The release's report with the extension's counts added (``splits`` is set by the caller, from the files)."""
    report = json.loads(json.dumps(report))
    clips = Counter(totals.clips)
    kept = clips.pop("kept", 0)
    added = {
        "inputs": {
            "total": sum(totals.outcomes.values()),
            "kept": totals.outcomes["kept"],
            "rejected": totals.outcomes["rejected"],
        },
        "clips": {"total": kept + sum(clips.values()), "kept": kept, "rejected": sum(clips.values())},
    }
    for what, by_reason in (("inputs", totals.input_reasons), ("clips", clips)):
        counts = report["counts"][what]
        for name, n in added[what].items():
            counts[name] = counts.get(name, 0) + n
        merged = Counter(report.setdefault("reasons", {}).get(what, {})) + Counter(by_reason)
        report["reasons"][what] = dict(sorted(merged.items()))
    filter_counts = report.get("filter_counts")
    if isinstance(filter_counts, dict):  # a report without them (older curation) keeps its pass rates as they were
        for name, counts in filter_counts.items():
            judged, passed = counts["judged"] + totals.judged[name], counts["passed"] + totals.passed[name]
            filter_counts[name] = {"judged": judged, "passed": passed}
            report["pass_rates"][name] = round(passed / judged, 6) if judged else None
    for key, n in (("realigned", totals.realigned), ("analysed_clips", totals.analysed)):
        if isinstance(report.get(key), int):
            report[key] += n
    retryable = report.setdefault("retryable", {"inputs": 0, "clips": 0})
    for what in ("inputs", "clips"):
        retryable[what] = retryable.get(what, 0) + totals.retryable[what]
    report["near_duplicates"] = dict(sorted({**report.get("near_duplicates", {}), **totals.duplicates}.items()))
    report["release_version"], report["date_modified"] = version, date
    return report

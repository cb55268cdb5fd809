"""``acav1m remove``: every clip of some source videos leaves a release (a takedown), as a new minor version.

Only the shards that held those clips are rewritten (`rewrite.copy_shard`; a shard left empty is deleted, and the
other shards keep their names, so a Hub sync uploads only what changed); the indexes lose the clips' rows; the
report counts them as rejected with the reason ``removed`` (and its filter counts, pass rates, analysed and
re-aligned clips no longer include them); the lines of their inputs in ``inputs.jsonl`` say ``removed``; the card
and Croissant are rendered again. ``removals.jsonl`` gets one line (`Removal`: the video ids, the reason, the date,
the version and how many clips; nothing of the clips' content) and ``CHANGELOG.md`` one section.

The whole edit holds the folder's lock (`acav1m_hf.lock`) and goes through `staging.Staging`. Rerunning a removal
that a kill interrupted finishes it or redoes it; rerunning one that finished finds every id already recorded in
``removals.jsonl`` and changes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acav1m_hf import release, strict_json
from acav1m_hf.facts import ReleaseFacts
from acav1m_hf.lock import output_lock
from acav1m_hf.maintain import rewrite, versions
from acav1m_hf.maintain.staging import Staging, recover
from acav1m_hf.schema import SPLITS

REMOVALS = "removals.jsonl"
REASON = "removed"
"""The rejection reason that a removed clip, and an input whose every clip was removed, are counted under."""
VIDEO_ID = "source.video_id"
FILTER_COLUMNS = {name: f"alignment.{name}.passed" for name in ("language", "instance", "temporal")}


@dataclass(frozen=True)
class Removal:
    """One line of ``removals.jsonl``: which videos left the release, why, when, in which version, how many clips."""

    video_ids: list[str]
    reason: str
    date: str
    version: str
    clips: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Removal:
        return cls(list(data["video_ids"]), data["reason"], data["date"], data["version"], int(data["clips"]))


@dataclass(frozen=True)
class RemovalResult:
    """What `remove_videos` did: the version it wrote (None: nothing to do), the clips removed, shards rewritten
    and deleted, and what `staging.recover` found of an earlier interrupted edit."""

    version: str | None
    clips: int
    rewritten: list[str]
    deleted: list[str]
    recovered: str | None


def read_removals(root: Path) -> list[Removal]:
    path = root / REMOVALS
    if not path.exists():
        return []
    return [Removal.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def read_ids_file(path: str | Path) -> list[str]:
    """Video ids one per line (blank lines and ``#`` comments skipped); a `ValueError` naming the file if none."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    ids = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not ids:
        raise ValueError(f"{path}: no video ids in it")
    return ids


def remove_videos(root: str | Path, video_ids: Iterable[str], reason: str, *, date: str | None = None) -> RemovalResult:
    """Remove every clip of ``video_ids`` from the release folder ``root``; see the module docstring."""
    root = Path(root)
    wanted = sorted(set(video_ids))
    if not wanted:
        raise ValueError("no video ids to remove")
    date = versions.check_date(date or versions.today())
    if not (root / release.REPORT).is_file():
        raise FileNotFoundError(f"{root}: no {release.REPORT}; is this a release folder?")
    with output_lock(root):
        return _remove(root, wanted, reason, date)


def _remove(root: Path, wanted: list[str], reason: str, date: str) -> RemovalResult:
    """`remove_videos` once the folder's lock is held."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    recovered = recover(root)
    report = json.loads((root / release.REPORT).read_text(encoding="utf-8"))
    versions.check_schema(root, report, "remove")
    tables = {s: pq.read_table(root / release.index_name(s)) for s in SPLITS if (root / release.index_name(s)).exists()}
    id_set = pa.array(wanted, pa.string())
    removed = {s: t.filter(pc.is_in(t[VIDEO_ID], value_set=id_set)) for s, t in tables.items()}
    present = {v for t in removed.values() for v in t[VIDEO_ID].to_pylist()}
    recorded = {v for r in read_removals(root) for v in r.video_ids}
    unknown = [v for v in wanted if v not in present and v not in recorded]
    if unknown:
        raise ValueError(f"{root}: no clip of video id(s) {', '.join(unknown)} in this release")
    if not present:
        return RemovalResult(None, 0, [], [], recovered)

    staging = Staging(root)
    delete: list[str] = []
    rewritten: list[str] = []
    indexes: dict[str, bytes] = {}
    for split, table in tables.items():
        if removed[split].num_rows == 0:
            indexes[split] = (root / release.index_name(split)).read_bytes()
            continue
        kept = table.filter(pc.invert(pc.is_in(table[VIDEO_ID], value_set=id_set)))
        keys_by_shard: dict[str, set[str]] = {}
        for shard, key in zip(kept["shard"].to_pylist(), kept["key"].to_pylist(), strict=True):
            keys_by_shard.setdefault(shard, set()).add(key)
        for shard in sorted(set(removed[split]["shard"].to_pylist())):
            if shard in keys_by_shard:
                rewrite.copy_shard(root / shard, staging.path(shard), keys_by_shard[shard])
                rewritten.append(shard)
            else:
                delete.append(shard)
        if kept.num_rows:
            indexes[split] = rewrite.index_bytes(kept)
            staging.write(release.index_name(split), indexes[split])
        else:
            delete.append(release.index_name(split))
    if not indexes:
        raise ValueError(f"{root}: removing {', '.join(wanted)} would leave no clip in the release")

    gone = pa.concat_tables(t for t in removed.values() if t.num_rows)
    version = versions.bump_minor(ReleaseFacts.build(report, [], {}).curation.release_version)
    removal = Removal(sorted(present), reason, date, version, gone.num_rows)
    input_lines = _input_lines(root, present, gone)
    report = _report_without(report, gone, input_lines.removed_inputs, version, date)
    shards = [
        rewrite.file_facts(rel, staging.folder / rel if rel in rewritten else root / rel)
        for rel in (p.relative_to(root).as_posix() for paths in release.list_shards(root).values() for p in paths)
        if rel not in delete
    ]
    facts = rewrite.build_facts(report, shards, indexes)
    report["splits"] = rewrite.split_totals(facts)
    for rel, text in rewrite.card_and_croissant(facts).items():
        staging.write(rel, text)
    staging.write(release.REPORT, rewrite.report_text(report))
    if input_lines.text is not None:
        staging.write(release.INPUTS, input_lines.text)
    changelog = root / versions.CHANGELOG
    text = (
        f"Removed {removal.clips} clip(s) of {len(removal.video_ids)} video(s) ({', '.join(removal.video_ids)}): "
        f"{reason}. Shards rewritten: {', '.join(rewritten) or 'none'}; deleted: "
        f"{', '.join(d for d in delete if d.startswith(release.DATA_DIR)) or 'none'}."
    )
    old_changelog = changelog.read_text(encoding="utf-8") if changelog.exists() else None
    staging.write(versions.CHANGELOG, versions.add_entry(old_changelog, version, date, text))
    old_removals = (root / REMOVALS).read_text(encoding="utf-8") if (root / REMOVALS).exists() else ""
    staging.write(REMOVALS, old_removals + strict_json.dumps(removal.to_dict(), sort_keys=True) + "\n")
    staging.commit(delete)
    return RemovalResult(
        version, removal.clips, rewritten, [d for d in delete if d.startswith(release.DATA_DIR)], recovered
    )


@dataclass(frozen=True)
class _InputLines:
    text: str | None
    removed_inputs: int


def _input_lines(root: Path, present: set[str], gone: Any) -> _InputLines:
    """``inputs.jsonl`` with the removed videos' inputs marked: their clips count under ``clips_rejected.removed``,
    and an input left with no clip becomes ``rejected`` with the reason ``removed`` (the line stays: no input is
    dropped from the record)."""
    path = root / release.INPUTS
    if not path.exists():
        return _InputLines(None, 0)
    clips = Counter(gone[VIDEO_ID].to_pylist())
    lines, removed_inputs = [], 0
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = json.loads(raw)
        video = line.get("video_id")
        if video in present and line.get("outcome") == "kept":
            taken = min(clips[video], int(line.get("clips") or 0))
            clips[video] -= taken
            line["clips"] = int(line["clips"]) - taken
            line["clips_rejected"] = dict(sorted({**line.get("clips_rejected", {}), REASON: taken}.items()))
            if line["clips"] == 0:
                line["outcome"], line["reason"] = "rejected", REASON
                removed_inputs += 1
        lines.append(strict_json.dumps(line, sort_keys=True) + "\n")
    return _InputLines("".join(lines), removed_inputs)


def _report_without(report: dict[str, Any], gone: Any, removed_inputs: int, version: str, date: str) -> dict[str, Any]:
    """The report once the clips of ``gone`` (their index rows) have left the release."""
    n = gone.num_rows
    report = json.loads(json.dumps(report))
    counts, reasons = report.setdefault("counts", {}), report.setdefault("reasons", {})
    for what, moved in (("clips", n), ("inputs", removed_inputs)):
        if what in counts and moved:
            counts[what]["kept"] -= moved
            counts[what]["rejected"] += moved
            by_reason = reasons.setdefault(what, {})
            by_reason[REASON] = by_reason.get(REASON, 0) + moved
            reasons[what] = dict(sorted(by_reason.items()))
    if isinstance(report.get("analysed_clips"), int):
        report["analysed_clips"] -= n
    if isinstance(report.get("realigned"), int):
        report["realigned"] -= sum(bool(v) for v in gone["alignment.sync.realigned"].to_pylist())
    filter_counts = report.get("filter_counts")
    if isinstance(filter_counts, dict):  # a report without them (older curation) keeps its pass rates as they were
        for name, column in FILTER_COLUMNS.items():
            verdicts = [v for v in gone[column].to_pylist() if v is not None]
            judged = filter_counts[name]["judged"] - len(verdicts)
            passed = filter_counts[name]["passed"] - sum(verdicts)
            filter_counts[name] = {"judged": judged, "passed": passed}
            report["pass_rates"][name] = round(passed / judged, 6) if judged else None
    report["release_version"], report["date_modified"] = version, date
    return report


__all__ = ["REMOVALS", "Removal", "RemovalResult", "read_ids_file", "remove_videos"]

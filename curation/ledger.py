"""The run's ledger under ``OUT/_work/``: the plan, each unit's record and parts, and the finalize record.

This is the only module that knows the work folder's names. A unit's record
(`UnitRecord`, ``{unit}.done.json``) is the last file it writes: present and
matching its parts (size and sha256), the unit is never redone. A unit that
raised on every attempt has a ``{unit}.failed.json`` instead. ``plan.json``
names the run (its fingerprint) and its units; ``finalized.json`` means the
release is whole.

What a folder holds: one run at a time writes it (`acav1m_hf.lock`), and
``--overwrite`` removes only the files that an earlier run's own records
(``report.json``, ``plan.json`` and the unit records) name; any other file in
the folder means a refusal that lists it (`prepare`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acav1m_hf import release, strict_json
from acav1m_hf.lock import LOCK
from curation.crash import crash_point
from curation.inputs import input_line
from curation.plan import Unit, unit_name
from curation.records import CurationError, UnitFailure, UnitRecord
from curation.writer import Store, partial_name

WORK_DIR = "_work"
PLAN = f"{WORK_DIR}/plan.json"
FINALIZED = f"{WORK_DIR}/finalized.json"
_PART = re.compile(r"(?P<unit>.+)-p\d{3,}\.tar")


def _record_name(unit: Unit | str, outcome: str) -> str:
    return f"{WORK_DIR}/{unit if isinstance(unit, str) else unit.name}.{outcome}.json"


def marker_name(unit: Unit | str) -> str:
    """The record a finished unit writes last: its presence means the unit is done."""
    return _record_name(unit, "done")


def failed_name(unit: Unit | str) -> str:
    """The record of a unit that failed all its attempts."""
    return _record_name(unit, "failed")


def part_path(unit: Unit) -> Callable[[int], str]:
    """Where the unit's ``n``-th shard part is written."""
    return lambda part: f"{WORK_DIR}/{unit.name}-p{part:03d}.tar"


def part_file(part: str) -> str:
    """The store path of a part named in a record (`PartRecord.part`)."""
    return f"{WORK_DIR}/{part}"


# --------------------------------------------------------------------------- unit records


def write_record(store: Store, record: UnitRecord) -> None:
    """Write (or replace) a finished unit's record."""
    store.write_atomic(marker_name(record.unit), strict_json.dumps(record.to_dict(), sort_keys=True, default=str))


def write_failure(store: Store, failure: UnitFailure) -> None:
    store.write_atomic(failed_name(failure.unit), strict_json.dumps(failure.to_dict(), sort_keys=True))


def read_done(store: Store, unit: Unit | str) -> UnitRecord | None:
    """A finished unit's record, or None."""
    try:
        return UnitRecord.from_dict(json.loads(store.read_text(marker_name(unit))))
    except FileNotFoundError:
        return None


def read_record(store: Store, unit: Unit) -> UnitRecord | None:
    """A unit's record: its ``.done.json``, or a failure record from its ``.failed.json``, or None when neither exists."""
    record = read_done(store, unit)
    if record is not None:
        return record
    try:
        failure = UnitFailure.from_dict(json.loads(store.read_text(failed_name(unit))))
    except FileNotFoundError:
        return None
    detail = f"unit {unit.name} failed {failure.attempts} time(s): {failure.error}"[:500]
    lines = [input_line(item, "rejected", "unit_failed", detail, 0, {}, True) for item in unit.items]
    return UnitRecord.of_failure(failure, lines)


def recorded_units(store: Store, units: list[Unit]) -> set[str]:
    """The units with a record, done or failed (one listing, not a request per unit: object stores)."""
    listed = set(store.listdir(WORK_DIR))
    return {u.name for u in units if {f"{u.name}.done.json", f"{u.name}.failed.json"} & listed}


def finished_units(store: Store, units: list[Unit]) -> list[Unit]:
    """The units, in plan order, whose record says they are done."""
    return [u for u in units if store.exists(marker_name(u))]


# --------------------------------------------------------------------------- resuming


def start(store: Store, fingerprint: str, units: list[Unit]) -> None:
    """Create the work folder and, once, the plan record (it names the units' files for a later ``--overwrite``)."""
    store.makedirs(WORK_DIR)
    if not store.exists(PLAN):
        counts = Counter(unit.split for unit in units)
        store.write_atomic(PLAN, strict_json.dumps({"fingerprint": fingerprint, "units": dict(sorted(counts.items()))}))


def recall_parts(store: Store, units: list[Unit]) -> None:
    """Move back to ``_work/`` the parts an interrupted (or retried) finalize had moved to ``data/``.

    Afterwards every finished unit's parts are under ``_work/`` again, so the
    checks and the next finalize start from one known state.
    """
    if not store.listdir(release.DATA_DIR):
        return
    names: dict[str, str] = {}  # part → final shard name, as finalize assigns them
    counters: Counter[str] = Counter()
    for unit in units:
        record = read_record(store, unit)
        if record is None:
            return  # finalize never started: data/ holds nothing of this run
        for part in record.parts:
            names[part_file(part.part)] = release.shard_name(unit.split, counters[unit.split])
            counters[unit.split] += 1
    for part, final in names.items():
        if not store.exists(part) and store.exists(final):
            store.move(final, part)


def forget_retryable(store: Store, units: list[Unit]) -> int:
    """Delete the records of failed units and of units with transient failures, so that they are redone."""
    count = 0
    for unit in units:
        record = read_record(store, unit)
        if record is None or not record.needs_retry:
            continue
        for part in record.parts:
            store.remove(part_file(part.part))
        store.remove(marker_name(unit))
        store.remove(failed_name(unit))
        count += 1
    return count


def check_done(store: Store, units: list[Unit]) -> list[str]:
    """Delete the record of every finished unit whose parts are missing or differ from it (size, sha256)."""
    bad = []
    for unit in units:
        record = read_done(store, unit)
        for part in record.parts if record else []:
            name = part_file(part.part)
            if store.size(name) != part.bytes or store.sha256(name) != part.sha256:
                store.remove(marker_name(unit))
                bad.append(unit.name)
                break
    return bad


def mark_finalized(store: Store, retained: bool) -> None:
    """The release is whole; ``retained``: ``_work/`` stays (its JSON) for ``--retry-failed``."""
    store.write_atomic(FINALIZED, strict_json.dumps({"retained": retained}))


def reopen(store: Store) -> None:
    """A finished run that ``--retry-failed`` continues: from here on a rerun (with the flag or not) re-finalizes."""
    store.remove(FINALIZED)


def remove_work(store: Store, units: list[Unit]) -> None:
    """Remove the run's files from ``_work/``, ``finalized.json`` last, so that a crash midway leaves a state a rerun recognises.

    Only the plan's records and parts go: a file someone else put in
    ``_work/`` stays, and so does the folder then.
    """
    names = {unit.name for unit in units}
    for name in store.listdir(WORK_DIR):
        rel = f"{WORK_DIR}/{name}"
        if rel != FINALIZED and _is_work_file(_without_partial(rel), names):
            store.remove(rel)
            crash_point("cleanup")
    store.remove(FINALIZED)
    store.remove_dir(WORK_DIR)


# --------------------------------------------------------------------------- what a folder holds


@dataclass
class FolderState:
    complete: bool = False
    """A finalized release of this plan is here."""
    retained: bool = False
    """Its ``_work/`` was kept for ``--retry-failed``."""


def prepare(store: Store, fingerprint: str, overwrite: bool) -> FolderState:
    """Refuse to mix two different runs in one folder; never delete a release unasked, nor a file a run did not write."""
    owned = _run_files(store)
    if owned is None or overwrite:
        _clear(store, owned)
        return FolderState()
    if store.exists(FINALIZED):
        previous = json.loads(store.read_text(release.REPORT)).get("plan")
        state = FolderState(complete=True, retained=json.loads(store.read_text(FINALIZED)).get("retained", False))
    elif store.exists(PLAN):
        previous = json.loads(store.read_text(PLAN))["fingerprint"]
        state = FolderState()
    else:
        previous = json.loads(store.read_text(release.REPORT)).get("plan")
        state = FolderState(complete=True)
    if previous != fingerprint:
        raise CurationError(
            f"{store.display()}: holds a run with other inputs or settings; pass --overwrite to replace it, or use another folder"
        )
    return state


def _clear(store: Store, owned: Callable[[str], bool] | None) -> None:
    """Remove what an earlier run wrote (``owned``; None: no run, so only a plan a killed run left half-written).

    Any other file means a refusal that lists it, before anything is removed.
    The records go last, so that a clear cut short still knows what is its own.
    """
    files = [name for name in store.files() if name != LOCK]
    own = owned or (lambda name: name == partial_name(PLAN))
    foreign = [name for name in files if not own(name)]
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        if owned is None:
            raise CurationError(
                f"{store.display()}: folder exists and is not an acav1m release (it holds {shown}); choose another folder"
            )
        raise CurationError(
            f"{store.display()}: --overwrite removes only what acav1m curate wrote, and {len(foreign)} other file(s) are "
            f"here: {shown}; move them out or choose another folder (nothing was removed)"
        )
    for name in sorted(files, key=lambda name: (name in (PLAN, release.REPORT), name.startswith(f"{WORK_DIR}/"))):
        store.remove(name)
    for folder in (release.DATA_DIR, release.METADATA_DIR, WORK_DIR):
        store.remove_dir(folder)


def _run_files(store: Store) -> Callable[[str], bool] | None:
    """Whether a file is one that an earlier run wrote here, known from its records; None when there are none.

    ``report.json`` names the release files and, by its splits' shard counts,
    the shards and indexes. ``_work/plan.json`` names the units, so their
    records and parts; their records name the parts that a finalize cut short
    may have moved to ``data/``. Each of these may also be there as its
    ``.partial``. A file named by no record is not the run's.
    """
    report, plan = _own_record(store, release.REPORT, "acav1m_version"), _own_record(store, PLAN, "fingerprint")
    if report is None and plan is None:
        return None
    shards = Counter({split: stats["shards"] for split, stats in (report or {}).get("splits", {}).items()})
    units = {split: count for split, count in (plan or {}).get("units", {}).items()}
    names = {unit_name(split, i) for split, count in units.items() for i in range(count)}
    recorded = set(store.listdir(WORK_DIR))
    for split, count in units.items():
        moved = 0
        for i in range(count):
            if f"{unit_name(split, i)}.done.json" in recorded:
                moved += len(json.loads(store.read_text(marker_name(unit_name(split, i))))["parts"])
        shards[split] = max(shards[split], moved)
    files = {release.REPORT, release.INPUTS, release.CARD, release.CROISSANT}
    files |= {release.index_name(split) for split in set(shards) | set(units)}
    files |= {release.shard_name(split, n) for split, count in shards.items() for n in range(count)}

    def owned(name: str) -> bool:
        name = _without_partial(name)
        return name in files or _is_work_file(name, names)

    return owned


def _is_work_file(name: str, units: set[str]) -> bool:
    """Whether ``name`` is the plan, the finalize record, or a record or part under ``_work/`` of one of the ``units``."""
    if name in (PLAN, FINALIZED):
        return True
    head, _, base = name.partition("/")
    if head != WORK_DIR or "/" in base:
        return False
    unit, _, outcome = base.partition(".")
    part = _PART.fullmatch(base)
    return (unit in units and outcome in ("done.json", "failed.json")) or (part is not None and part["unit"] in units)


def _without_partial(name: str) -> str:
    """``a/b`` for ``a/.b.partial`` (see `partial_name`), else ``name``."""
    head, _, base = name.rpartition("/")
    if base.startswith(".") and base.endswith(".partial"):
        base = base[1 : -len(".partial")]
    return f"{head}/{base}" if head else base


def _own_record(store: Store, rel: str, key: str) -> dict[str, Any] | None:
    """The JSON record ``rel`` when it is the pipeline's (an object with ``key``), else None (absent, or someone else's)."""
    try:
        data = json.loads(store.read_text(rel))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and key in data else None

"""``acav1m extend OUT INPUTS``: new inputs curated into new shards after a release's own, as its next minor version.

The whole command holds the folder's lock (`acav1m_hf.lock`), as curate and the other maintenance commands do:

1. An edit of OUT that a kill interrupted is finished or undone (`acav1m_hf.maintain.staging.recover`).
2. The settings are the release's (``report.json``'s ``config``) unless others are given, and everything the run's
   fingerprint hashes besides the inputs (`curation.plan.settings`: acav1m version, schema, config, profile settings)
   must equal what ``report.json`` records: a difference is refused, naming each setting with both values. A release
   under another schema is refused first (`acav1m_hf.maintain.versions.check_schema`).
3. The inputs are read as curate reads them. An input with the video and window of an input that ``inputs.jsonl``
   records (whatever became of it), or an input problem recorded under the same name, is rejected
   ``duplicate_input``; an input of a video a removal took down (``removals.jsonl``) is rejected ``removed``, so a
   takedown stays. When nothing else is left, nothing changes: this is where a rerun of a finished extension lands.
4. The new inputs are planned and processed into units as curate does, under ``OUT/.extend/`` (its own ledger: a
   rerun after a kill keeps the finished units). A unit that fails every attempt stops the extension before the
   release changes; the rerun tries it again.
5. A new clip whose key the release already holds (another window of a video in it that cuts a clip at the same
   second) is removed as ``duplicate_key``. With embeddings, near-duplicates are searched as in one run: the
   release's clips first (their vectors computed again from their ``npy`` members), then the new units in plan
   order; only new clips are removed, and they are recorded with the clip they duplicate.
6. `curation.extend_release.write_extension` stages the new shards, the indexes, inputs, report, card, Croissant
   and changelog, and switches them in; ``OUT/.extend/`` goes last.
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acav1m_hf import release, strict_json
from acav1m_hf.lock import output_lock
from acav1m_hf.maintain import versions
from acav1m_hf.maintain.remove import REASON as REMOVED
from acav1m_hf.maintain.remove import read_removals
from acav1m_hf.maintain.staging import recover
from acav1m_hf.schema import SPLITS, split_member_name
from curation import ledger
from curation.analyse import ProfileFactory
from curation.config import CurationConfig
from curation.deduplicate import deduplicate, drop_clips, sample_vector
from curation.engines.local import LocalEngine
from curation.engines.work import Engine
from curation.extend_release import Extension, write_extension
from curation.inputs import InputProblem, read_inputs
from curation.manifest import DEFAULT_URL_TEMPLATE
from curation.plan import Unit, fingerprint, plan, settings
from curation.records import CurationError, InputItem, Sample
from curation.redact import redact_url
from curation.run import UnitJob
from curation.segments import FetchOptions
from curation.writer import Store

SCRATCH = ".extend"
"""The extension's own work folder inside the release (a curate output of the new inputs, never a release)."""
DUPLICATE_KEY = "duplicate_key"
DUPLICATE_INPUT = "duplicate_input"


@dataclass(frozen=True)
class ExtendResult:
    """What `extend` did: the version written (None: nothing new), and what `staging.recover` found first."""

    version: str | None
    extension: Extension | None
    recovered: str | None


def recorded_config(root: str | Path) -> CurationConfig:
    """The settings the release was curated with (``report.json``'s ``config``): extend's default."""
    return CurationConfig.from_dict(dict(_report(Path(root))["config"]), source=f"{root}/{release.REPORT}")


def settings_differences(report: dict[str, Any], config: CurationConfig) -> list[str]:
    """Each setting of `curation.plan.settings` that ``config`` gives otherwise than ``report`` records, as
    ``name: value in the release, value here`` (dotted names inside ``config`` and ``profile_settings``)."""
    here = json.loads(strict_json.dumps(settings(config), sort_keys=True, default=str))
    return [
        f"{name}: {json.dumps(old)} in the release, {json.dumps(new)} here"
        for name, old, new in _leaves({key: report.get(key) for key in here}, here)
        if old != new
    ]


def extend(
    out: str | Path,
    inputs: list[str],
    config: CurationConfig | None = None,
    *,
    date: str | None = None,
    engine: Engine | None = None,
    profile_factory: ProfileFactory | None = None,
    fetch: FetchOptions | None = None,
    url_template: str = DEFAULT_URL_TEMPLATE,
    log: Callable[[str], None] | None = None,
) -> ExtendResult:
    """Curate ``inputs`` into the release folder ``out`` after its clips (``config``: default, the release's own);
    see the module docstring."""
    root = Path(out)
    say = log or (lambda message: print(message, file=sys.stderr))
    date = versions.check_date(date or versions.today())
    _report(root)  # a release folder, before the lock makes one
    with output_lock(root):
        recovered = recover(root)
        report = _report(root)
        versions.check_schema(root, report, "extend")
        config = config or recorded_config(root)
        differences = settings_differences(report, config)
        if differences:
            raise ValueError(
                f"{root}: extend curates with the release's own settings, and these differ: {'; '.join(differences)}"
            )
        items, problems = read_inputs(inputs, exclude=root, url_template=url_template)
        version = str(report.get("release_version", versions.FIRST_VERSION))
        items, problems, fresh = _against_release(root, items, problems, version)
        if not items and not fresh:
            shutil.rmtree(root / SCRATCH, ignore_errors=True)  # left by an extension killed after its switch
            return ExtendResult(None, None, recovered)
        units = plan(items, config)
        planned = fingerprint(units, problems, config)
        store = Store(root / SCRATCH)
        _start(store, planned, units)
        done = ledger.recorded_units(store, units)
        todo = [u for u in units if u.name not in done]
        if done:
            say(f"{root}: resuming the extension: {len(done)} of {len(units)} units already done")
        job = UnitJob(config, store, profile_factory, fetch or FetchOptions())
        failures = (engine or LocalEngine()).run(todo, job) if todo else []
        if failures:
            raise CurationError(
                f"{root}: {len(failures)} unit(s) of the extension failed (first: {failures[0].error}); the release "
                f"is unchanged; rerun the same command to try them again (finished units are kept in {SCRATCH}/)"
            )
        drop_clips(store, units, _release_keys(root) & _new_keys(store, units), DUPLICATE_KEY)
        if config.dedup_threshold is not None and any(ledger.read_done(store, u).vectors for u in units):
            deduplicate(store, units, config, earlier=_release_vectors(root))
        extension = write_extension(root, store, units, problems, report, versions.bump_minor(version), date)
        shutil.rmtree(root / SCRATCH)
    return ExtendResult(extension.version, extension, recovered)


def _report(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / release.REPORT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{root}: no {release.REPORT}; is this a release folder?") from None


def _leaves(old: Any, new: Any, name: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted name, old, new) of every leaf of two JSON values, objects compared key by key."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            yield from _leaves(old.get(key), new.get(key), f"{name}.{key}" if name else key)
    else:
        yield name, old, new


def _against_release(
    root: Path, items: list[InputItem], problems: list[InputProblem], version: str
) -> tuple[list[InputItem], list[InputProblem], bool]:
    """The items not yet in the release, and the problems, an input already in it (or taken down) made one of; and
    whether any problem is new to the release (one that no line of ``inputs.jsonl`` names)."""
    lines = [json.loads(line) for line in (root / release.INPUTS).read_text(encoding="utf-8").splitlines() if line]
    windows = {(line["video_id"], line["start"], line["end"]) for line in lines if line.get("video_id")}
    names = {line["input"] for line in lines}
    removed = {video: r.version for r in read_removals(root) for video in r.video_ids}
    before = f"recorded in inputs.jsonl of version {version}"
    seen = [InputProblem(p.input, DUPLICATE_INPUT, before) for p in problems if redact_url(p.input) in names]
    fresh = [p for p in problems if redact_url(p.input) not in names]
    kept = []
    for item in items:
        where = item.given or item.path
        if item.video_id in removed:
            seen.append(
                InputProblem(where, REMOVED, f"video {item.video_id} removed in version {removed[item.video_id]}")
            )
        elif (item.video_id, item.start, item.end) in windows:
            seen.append(InputProblem(where, DUPLICATE_INPUT, f"same video and window as an input {before}"))
        else:
            kept.append(item)
    return kept, fresh + seen, bool(fresh)


def _start(store: Store, planned: str, units: list[Unit]) -> None:
    """Keep the scratch ledger of this same extension (a rerun resumes it); drop one of other inputs or settings.

    Failed units' records go, so that they are tried again."""
    if store.exists(ledger.PLAN) and json.loads(store.read_text(ledger.PLAN))["fingerprint"] != planned:
        store.remove_tree("")
    ledger.start(store, planned, units)
    for unit in units:
        store.remove(ledger.failed_name(unit))
    ledger.check_done(store, units)


def _release_keys(root: Path) -> set[str]:
    import pyarrow.parquet as pq

    paths = [root / release.index_name(s) for s in SPLITS if (root / release.index_name(s)).exists()]
    return {key for path in paths for key in pq.read_table(path, columns=["key"])["key"].to_pylist()}


def _new_keys(store: Store, units: list[Unit]) -> set[str]:
    return {row["key"] for unit in units for row in ledger.read_done(store, unit).rows}


def _release_vectors(root: Path) -> Iterator[tuple[str, str]]:
    """(key, `sample_vector`) of each clip of the release with embeddings, shard by shard, as curation made them."""
    for paths in release.list_shards(root).values():
        for path in paths:
            members: dict[str, dict[str, bytes]] = {}
            with tarfile.open(path, "r:") as tar:
                for member in tar:
                    key, extension = split_member_name(member.name)
                    if extension in ("json", "npy"):
                        members.setdefault(key, {})[extension] = tar.extractfile(member).read()  # type: ignore[union-attr]
            for key, found in sorted(members.items()):
                vector = sample_vector(Sample(key, json.loads(found["json"]), found)) if "npy" in found else None
                if vector is not None:
                    yield key, vector

"""The curation pipeline: plan → process units → finalize, resumable after a crash at any moment.

1. **Plan.** Inputs are read (`curation.inputs`), assigned a split by their
   video id, and grouped into units of work before anything is decoded. The
   plan is deterministic, so a unit is what an engine (`curation.engines`)
   schedules, retries and resumes.
2. **Process a unit** (`process_unit`): decode each input into clips, caption,
   align, filter, encode, and write the samples into the unit's shard parts
   under ``OUT/_work/``. A unit ends by atomically writing its ``.done.json``
   (per-part stats with sha256, index rows, per-input and per-clip outcomes);
   a unit whose marker is present and whose parts check out is never redone.
   A unit that raised on every one of its attempts gets a ``.failed.json``.
3. **Finalize** (`finalize`): move the parts to ``data/{split}-{n:05d}.tar``
   in plan order, write the Parquet index, ``inputs.jsonl``, ``report.json``,
   the dataset card and ``croissant.json``, then ``_work/finalized.json``, then
   remove ``_work/``. Finalize streams the markers one unit at a time, so the
   driver's memory does not grow with the number of clips.

Crash safety: every file appears under its name whole or not at all (see
`curation.writer.Store`), and each step is idempotent. On a restart with the
same command, parts already moved by an interrupted finalize are moved back,
finished units are checked (size and sha256 of each part) and kept, and only
the rest is processed, so the release ends byte-identical to an uninterrupted
run. Where the run had failures that may be transient, ``_work/`` is kept
(JSON only, the parts are in ``data/``) so that ``--retry-failed`` can redo
just those units; see docs/scale.md.

Every input and every clip ends with an outcome; nothing is dropped silently.

The output folder: one run at a time writes it (`curation.lock`), and
``--overwrite`` removes only the files that an earlier run's own records
(``report.json``, ``_work/plan.json`` and the unit markers) name; any other
file in the folder means a refusal that lists it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from acav1m_hf import release, strict_json
from acav1m_hf.schema import SCHEMA_VERSION, SPLITS, arrow_schema, flatten
from curation import __version__
from curation.captioning import CaptionResult, caption_batch
from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.deduplicate import deduplicate, sample_vector
from curation.filters import Decision, realign, rms_dbfs
from curation.inputs import InputProblem, as_written, read_inputs
from curation.lock import LOCK, output_lock
from curation.profiles import Profile, build_profile, profile_settings
from curation.records import Clip, InputItem, Rejected
from curation.roles import Analysis
from curation.sample import build_sample, split_of
from curation.writer import ShardWriter, Store, partial_name

WORK_DIR = "_work"
PLAN = f"{WORK_DIR}/plan.json"
FINALIZED = f"{WORK_DIR}/finalized.json"
INDEX_ROW_GROUP = 50_000
"""Rows per Parquet row group: finalize holds at most this many index rows in memory."""
MODEL_FAILURES = ("captioner failed", "condenser failed", "aligner failed")
"""Reason prefixes of model-stage failures: recorded on the clip, and retried by ``--retry-failed``."""


class CurationError(RuntimeError):
    """The run as a whole cannot go on (e.g. it wrote nothing from non-empty input)."""


@dataclass(frozen=True)
class Unit:
    split: str
    index: int
    items: tuple[InputItem, ...]

    @property
    def name(self) -> str:
        return unit_name(self.split, self.index)


def unit_name(split: str, index: int) -> str:
    """The name of a split's ``index``-th unit: its records and parts under ``_work/`` start with it."""
    return f"{split}-u{index:05d}"


def plan(items: list[InputItem], config: CurationConfig) -> list[Unit]:
    """Group items per split, in input order, into units of ``config.inputs_per_unit``."""
    per_split: dict[str, list[InputItem]] = {s: [] for s in SPLITS}
    for item in items:
        per_split[split_of(item.video_id, config.split_fractions)].append(item)
    size = config.inputs_per_unit
    return [
        Unit(split, i // size, tuple(group[i : i + size]))
        for split, group in per_split.items()
        for i in range(0, len(group), size)
    ]


def plan_fingerprint(units: list[Unit], problems: list[InputProblem], config: CurationConfig) -> str:
    """Hash of everything that decides the output: a resumed run must have the same one."""
    digest = hashlib.sha256()
    head = {
        "config": config.to_dict(),
        "profile": profile_settings(config),
        "version": __version__,
        "schema": SCHEMA_VERSION,
    }
    digest.update(strict_json.dumps(head, sort_keys=True, default=str).encode())
    for unit in units:  # streamed: no second copy of the whole plan as one JSON string
        digest.update(
            strict_json.dumps([unit.name, [asdict(i) for i in unit.items]], sort_keys=True, default=str).encode()
        )
    digest.update(strict_json.dumps([asdict(p) for p in problems], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _work_record(unit: Unit | str, outcome: str) -> str:
    return f"{WORK_DIR}/{unit if isinstance(unit, str) else unit.name}.{outcome}.json"


def marker_name(unit: Unit | str) -> str:
    """The record a finished unit writes last: its presence means the unit is done."""
    return _work_record(unit, "done")


def failed_name(unit: Unit | str) -> str:
    """The record of a unit that failed all its attempts."""
    return _work_record(unit, "failed")


# --------------------------------------------------------------------------- test hook


_CRASH_COUNTS: Counter[str] = Counter()


def crash_point(event: str) -> None:
    """SIGKILL this process at the n-th ``event`` when ``ACAV1M_TEST_CRASH=event:n`` is set (crash tests only).

    Tests use it to kill a run at exact points (after a unit's marker, between
    two moves of finalize...). ``event:n:INT`` sends SIGINT instead, as a
    Ctrl-C at that point would. Unset, it costs one dictionary lookup.
    """
    wanted = os.environ.get("ACAV1M_TEST_CRASH")
    if not wanted:
        return
    name, _, rest = wanted.partition(":")
    if name != event:
        return
    count, _, signal_name = rest.partition(":")
    _CRASH_COUNTS[event] += 1
    if _CRASH_COUNTS[event] == int(count or 1):  # once: a stopped run that is continued goes on
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), getattr(signal, f"SIG{signal_name or 'KILL'}"))


# --------------------------------------------------------------------------- model stages


ProfileFactory = Callable[[CurationConfig], Profile]

_PROFILES: dict[tuple[str, str], Profile] = {}


def load_profile(config: CurationConfig, factory: ProfileFactory | None = None) -> Profile:
    """One profile per process, config and factory: models load once per worker, not once per unit."""
    factory = factory or build_profile
    key = (
        f"{factory.__module__}.{factory.__qualname__}",
        strict_json.dumps(config.to_dict(), sort_keys=True, default=str),
    )
    if key not in _PROFILES:
        _PROFILES[key] = factory(config)
    return _PROFILES[key]


@dataclass
class Analysed:
    """What the model stages made of one audible clip."""

    decision: Decision
    caption: CaptionResult
    model_failure: str | None = None
    """The first model-stage failure on this clip (recorded on the clip as null + reason), if any."""


class Analyser(Protocol):
    """Runs the model stages (caption, align, re-align) on a batch of clips, wherever the models live.

    ``profile`` is what `build_sample` records (``name``, ``models()``). The
    local engine analyses in-process; the Ray engine can send batches to GPU
    actors (`curation.engines`). Either way the same `analyse_batch` computes.
    """

    profile: Any

    def analyse(self, clips: list[Clip]) -> list[Analysed]: ...


class _GuardedAligner:
    """An aligner whose failure on a clip becomes null scores with the error as reason (the clip goes on).

    Its numbers are rounded to `curation.roles.DECIMALS` here, once for every
    profile, so that re-alignment, the filters and the shards all see the same
    machine-independent values.
    """

    def __init__(self, aligner: Any) -> None:
        self.inner = aligner
        self.name = aligner.name
        self.failures: list[str] = []

    def analyse(self, clip: Clip, caption: str | None) -> Analysis:
        """The inner aligner's analysis, rounded (`Analysis.rounded`) before any filter decides on it."""
        try:
            return self.inner.analyse(clip, caption).rounded()
        except Exception as exc:  # noqa: BLE001 - one clip's failure stays with that clip
            reason = f"aligner failed: {type(exc).__name__}: {exc}"[:300]
            self.failures.append(reason)
            return Analysis.missing(reason)


def analyse_batch(clips: list[Clip], profile: Profile, config: CurationConfig) -> list[Analysed]:
    """Caption, align and re-align audible clips; a model failure is recorded on its clip, never raised."""
    out = []
    for clip, caption in zip(clips, caption_batch(clips, profile), strict=True):
        aligner = _GuardedAligner(profile.aligner)
        analysis = aligner.analyse(clip, caption.text)
        decision = realign(clip, analysis, caption.text, aligner, config)
        failures = [caption.reason] if caption.reason and caption.reason.startswith(MODEL_FAILURES) else []
        out.append(Analysed(decision, caption, (failures + aligner.failures or [None])[0]))
    return out


class LocalAnalyser:
    """Model stages in this process."""

    def __init__(self, profile: Profile, config: CurationConfig) -> None:
        self.profile, self.config = profile, config

    def analyse(self, clips: list[Clip]) -> list[Analysed]:
        return analyse_batch(clips, self.profile, self.config)


# --------------------------------------------------------------------------- one unit


@dataclass(frozen=True)
class UnitJob:
    """Everything a worker needs to process any unit of one run (picklable: it travels to Ray workers)."""

    config: CurationConfig
    store: Store
    profile_factory: ProfileFactory | None = None

    def process(self, unit: Unit, analyser: Analyser | None = None) -> str:
        """Process ``unit`` (its marker is the result); return its name."""
        process_unit(unit, self.config, self.store, analyser, self.profile_factory)
        return unit.name


def process_unit(
    unit: Unit,
    config: CurationConfig,
    store: Store,
    analyser: Analyser | None = None,
    profile_factory: ProfileFactory | None = None,
) -> dict[str, Any]:
    """Curate one unit into ``store``'s ``_work/``; write and return its ``.done.json`` summary.

    Deterministic: the same unit and config give the same parts, byte for
    byte, whichever process or machine runs it.
    """
    with one_blas_thread():
        return _process_unit(unit, config, store, analyser, profile_factory)


def one_blas_thread() -> Any:
    """Limit BLAS/OpenMP pools to one thread while a stage computes, in every engine.

    BLAS results depend on the thread count in their last bits. The cpu
    aligner no longer uses BLAS, but the paper profile's models do when they
    run on CPU, and without this the same unit could give other bytes on a
    machine with more cores, or under Ray (which runs tasks with one thread).
    Parallelism comes from units, one per core, instead.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency; without it, shards may vary by core count
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(1)


def _process_unit(
    unit: Unit,
    config: CurationConfig,
    store: Store,
    analyser: Analyser | None,
    profile_factory: ProfileFactory | None,
) -> dict[str, Any]:
    if analyser is None:
        analyser = LocalAnalyser(load_profile(config, profile_factory), config)
    writer = ShardWriter(
        store, lambda part: f"{WORK_DIR}/{unit.name}-p{part:03d}.tar", config.shard_max_samples, config.shard_max_bytes
    )
    rows: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    clip_outcomes: Counter[str] = Counter()
    filters: list[dict[str, Any]] = []
    vectors: dict[str, str] = {}
    written: set[str] = set()
    retryable_clips = 0
    try:
        for item in unit.items:
            kept, reasons, model_failures = 0, Counter(), 0
            try:
                for batch in _batches(decode_clips(item, config), config.batch_size):
                    for outcome in _curate_batch(batch, analyser, config):
                        if isinstance(outcome, str):
                            reasons[outcome] += 1
                            continue
                        sample, filter_row, failure = outcome
                        model_failures += failure is not None
                        filters.append(filter_row)
                        if sample is None:
                            reasons["failed_" + "+".join(filter_row["flags"])] += 1
                            continue
                        if sample.key in written:  # two inputs cut the same clip: keep the first
                            reasons["duplicate_key"] += 1
                            continue
                        written.add(sample.key)
                        part = writer.write(sample)
                        crash_point("sample_written")  # its part still open: a kill leaves a .partial tar
                        rows.append({"part": part.rsplit("/", 1)[-1], "key": sample.key, **flatten(sample.metadata)})
                        vector = sample_vector(sample)
                        if vector is not None:
                            vectors[sample.key] = vector
                        kept += 1
            except Rejected as rejected:
                transient = rejected.retryable
                if kept:  # the file broke after some clips: those are written and stay; the line says both
                    detail = f"stopped early, {rejected.reason}: {rejected.detail}"
                    inputs.append(_input_line(item, "kept", None, detail, kept, reasons, transient))
                else:
                    inputs.append(
                        _input_line(item, "rejected", rejected.reason, rejected.detail, kept, reasons, transient)
                    )
            else:
                reason = None if kept else (reasons.most_common(1)[0][0] if reasons else "no_clips")
                inputs.append(
                    _input_line(item, "kept" if kept else "rejected", reason, "", kept, reasons, model_failures > 0)
                )
            clip_outcomes.update(reasons)
            clip_outcomes["kept"] += kept
            retryable_clips += model_failures
        stats = writer.close()
    except BaseException as error:
        writer.abort(error)
        raise
    parts = [
        {"part": s.path.rsplit("/", 1)[-1], "samples": s.samples, "bytes": s.bytes, "sha256": s.sha256} for s in stats
    ]
    summary = {
        "unit": unit.name,
        "parts": parts,
        "rows": rows,
        "inputs": inputs,
        "clips": dict(clip_outcomes),
        "filters": filters,
        "retryable": {"inputs": sum(1 for line in inputs if line["retryable"]), "clips": retryable_clips},
        "vectors": vectors,
    }
    store.write_atomic(marker_name(unit), strict_json.dumps(summary, sort_keys=True, default=str))
    crash_point("unit_done")
    return summary


def _batches(clips: Iterator[Clip], size: int) -> Iterator[list[Clip]]:
    batch: list[Clip] = []
    for clip in clips:
        batch.append(clip)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _curate_batch(clips: list[Clip], analyser: Analyser, config: CurationConfig) -> Iterator[Any]:
    """Yield per clip either a rejection reason (str) or ``(sample or None, filter outcome, model failure)``."""
    audible = []
    for clip in clips:
        if rms_dbfs(clip.audio) < config.silence_dbfs:
            yield "silent_audio"
        else:
            audible.append(clip)
    if not audible:
        return
    for analysed in analyser.analyse(audible):
        sample = build_sample(analysed.decision, analysed.caption, analyser.profile, config)
        alignment = sample.metadata["alignment"]
        row = {name: alignment[name]["passed"] for name in ("language", "instance", "temporal")}
        row.update(flags=alignment["flags"], realigned=analysed.decision.realigned)
        keep = alignment["passed"] or config.keep_flagged
        yield (sample if keep else None), row, analysed.model_failure


def _input_line(
    item: InputItem,
    outcome: str,
    reason: str | None,
    detail: str,
    kept: int,
    reasons: Counter[str],
    retryable: bool = False,
) -> dict[str, Any]:
    """One line of ``inputs.jsonl``, its paths as the user wrote them (see `curation.inputs.as_written`)."""
    shown = item.given or item.path
    return {
        "input": shown,
        "video_id": item.video_id,
        "start": item.start,
        "end": item.end,
        "outcome": outcome,
        "reason": reason,
        "detail": as_written(detail, item.path, shown) or None,
        "clips": kept,
        "clips_rejected": dict(sorted(reasons.items())),
        "retryable": retryable,
    }


# --------------------------------------------------------------------------- the run


@dataclass
class UnitFailure:
    """A unit that raised on every attempt (an engine's verdict after its bounded retries)."""

    unit: str
    attempts: int
    error: str


class Engine(Protocol):
    """Schedules units; `UnitJob.process` computes them. See `curation.engines`."""

    name: str

    def run(self, units: Sequence[Unit], job: UnitJob) -> list[UnitFailure]: ...


@dataclass
class _State:
    complete: bool = False
    retained: bool = False


def curate(
    inputs: list[str],
    out: str | Path,
    config: CurationConfig | None = None,
    engine: Engine | None = None,
    overwrite: bool = False,
    retry_failed: bool = False,
    profile_factory: ProfileFactory | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Curate ``inputs`` into the release ``out`` (a folder or any fsspec URL); return the report.

    Re-running the same command resumes an interrupted run (finished units are
    kept, the output ends byte-identical to an uninterrupted run); a
    different plan in a non-empty ``out`` is refused unless ``overwrite``.
    ``retry_failed`` redoes the units that failed and those with clips or
    inputs that failed for transient reasons (model errors, I/O errors).
    One run at a time writes ``out`` (`curation.lock.OutputBusy` for a
    second); a full disk raises `curation.writer.OutputFull`, naming the file.
    """
    from curation.engines import LocalEngine

    config = config or CurationConfig()
    say = log or (lambda message: print(message, file=sys.stderr))
    store = Store(out)
    items, problems = read_inputs(inputs, exclude=store.local_path())  # the output is never an input
    units = plan(items, config)
    fingerprint = plan_fingerprint(units, problems, config)
    with output_lock(store):
        state = _prepare(store, fingerprint, overwrite)
        if state.complete:
            if not state.retained:
                _remove_work(store, units)  # an interrupted clean-up: finish it
                return json.loads(store.read_text(release.REPORT))
            if not retry_failed:
                return json.loads(store.read_text(release.REPORT))
            store.remove(FINALIZED)  # from here on a rerun (with the flag or not) re-finalizes
        store.makedirs(WORK_DIR)
        if not store.exists(PLAN):
            counts = Counter(unit.split for unit in units)  # names the units' files for a later --overwrite
            store.write_atomic(
                PLAN, strict_json.dumps({"fingerprint": fingerprint, "units": dict(sorted(counts.items()))})
            )
        _recall_parts(store, units)
        if retry_failed:
            redo = _forget_retryable(store, units)
            if redo:
                say(f"{store.display()}: retrying {redo} unit(s) with failures")
        bad = _check_done(store, units)
        if bad:
            say(
                f"{store.display()}: {len(bad)} finished unit(s) have missing or corrupt parts; redoing {', '.join(bad)}"
            )
        recorded = set(store.listdir(WORK_DIR))  # one listing, not a request per unit (object stores)
        done = {u.name for u in units if {f"{u.name}.done.json", f"{u.name}.failed.json"} & recorded}
        todo = [u for u in units if u.name not in done]
        if done:
            say(f"{store.display()}: resuming: {len(done)} of {len(units)} units already done, {len(todo)} to process")
        failures = (engine or LocalEngine()).run(todo, UnitJob(config, store, profile_factory)) if todo else []
        for failure in failures:
            store.write_atomic(failed_name(failure.unit), strict_json.dumps(asdict(failure), sort_keys=True))
        finished = [u for u in units if store.exists(marker_name(u))]
        removed = deduplicate(
            store,
            [u.name for u in finished],
            lambda name: json.loads(store.read_text(marker_name(name))),
            lambda name, summary: store.write_atomic(
                marker_name(name), strict_json.dumps(summary, sort_keys=True, default=str)
            ),
            config,
        )
        if removed:
            say(f"{store.display()}: removed {removed} near-duplicate clip(s)")
        report = finalize(store, units, problems, config, fingerprint)
    if (items or problems) and report["counts"]["clips"]["kept"] == 0:
        failed = report["failed_units"]
        why = f"; {len(failed)} unit(s) failed, first: {failed[0]['error']}" if failed else ""
        raise CurationError(
            f"{store.display()}: no clip was kept from {len(items) + len(problems)} input(s); reasons: {report['reasons']}{why} "
            f"(see {store.display(release.INPUTS)})"
        )
    return report


# --------------------------------------------------------------------------- what a folder holds


def _prepare(store: Store, fingerprint: str, overwrite: bool) -> _State:
    """Refuse to mix two different runs in one folder; never delete a release unasked, nor a file a run did not write."""
    owned = _run_files(store)
    if owned is None or overwrite:
        _clear(store, owned)
        return _State()
    if store.exists(FINALIZED):
        previous = json.loads(store.read_text(release.REPORT)).get("plan")
        state = _State(complete=True, retained=json.loads(store.read_text(FINALIZED)).get("retained", False))
    elif store.exists(PLAN):
        previous = json.loads(store.read_text(PLAN))["fingerprint"]
        state = _State()
    else:
        previous = json.loads(store.read_text(release.REPORT)).get("plan")
        state = _State(complete=True)
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


_PART = re.compile(r"(?P<unit>.+)-p\d{3,}\.tar")


def _run_files(store: Store) -> Callable[[str], bool] | None:
    """Whether a file is one that an earlier run wrote here, known from its records; None when there are none.

    ``report.json`` names the release files and, by its splits' shard counts,
    the shards and indexes. ``_work/plan.json`` names the units, so their
    records and parts; their markers name the parts that a finalize cut short
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


def _record(store: Store, unit: Unit) -> dict[str, Any] | None:
    """A unit's ``.done.json`` summary, or a failure summary from its ``.failed.json``, or None when neither exists."""
    for name, failed in ((marker_name(unit), False), (failed_name(unit), True)):
        try:
            data = json.loads(store.read_text(name))
        except FileNotFoundError:
            continue
        return _failed_summary(unit, data) if failed else data
    return None


def _failed_summary(unit: Unit, failure: dict[str, Any]) -> dict[str, Any]:
    """A failed unit as finalize sees it: no parts, every input rejected with reason ``unit_failed``."""
    detail = f"unit {unit.name} failed {failure['attempts']} time(s): {failure['error']}"[:500]
    lines = [_input_line(item, "rejected", "unit_failed", detail, 0, Counter(), True) for item in unit.items]
    return {
        "unit": unit.name,
        "parts": [],
        "rows": [],
        "inputs": lines,
        "clips": {},
        "filters": [],
        "retryable": {"inputs": len(lines), "clips": 0},
        "failed": failure,
    }


def _final_names(store: Store, units: list[Unit]) -> dict[str, str] | None:
    """Part (``unit/part``) → final shard name, as finalize assigns them; None unless every unit has a record."""
    names: dict[str, str] = {}
    counters: Counter[str] = Counter()
    for unit in units:
        record = _record(store, unit)
        if record is None:
            return None
        for part in record["parts"]:
            names[f"{WORK_DIR}/{part['part']}"] = release.shard_name(unit.split, counters[unit.split])
            counters[unit.split] += 1
    return names


def _recall_parts(store: Store, units: list[Unit]) -> None:
    """Move back to ``_work/`` the parts an interrupted (or retried) finalize had moved to ``data/``.

    Afterwards every finished unit's parts are under ``_work/`` again, so the
    checks and the next finalize start from one known state.
    """
    if not store.listdir(release.DATA_DIR):
        return
    names = _final_names(store, units)
    if names is None:
        return  # finalize never started: data/ holds nothing of this run
    for part, final in names.items():
        if not store.exists(part) and store.exists(final):
            store.move(final, part)


def _forget_retryable(store: Store, units: list[Unit]) -> int:
    """Delete the records of failed units and of units with transient failures, so that they are redone."""
    count = 0
    for unit in units:
        record = _record(store, unit)
        if record is None:
            continue
        if record.get("failed") or any(record.get("retryable", {}).values()):
            for part in record["parts"]:
                store.remove(f"{WORK_DIR}/{part['part']}")
            store.remove(marker_name(unit))
            store.remove(failed_name(unit))
            count += 1
    return count


def _check_done(store: Store, units: list[Unit]) -> list[str]:
    """Delete the marker of every finished unit whose parts are missing or differ from it (size, sha256)."""
    bad = []
    for unit in units:
        try:
            summary = json.loads(store.read_text(marker_name(unit)))
        except FileNotFoundError:
            continue
        for part in summary["parts"]:
            name = f"{WORK_DIR}/{part['part']}"
            if store.size(name) != part["bytes"] or store.sha256(name) != part["sha256"]:
                store.remove(marker_name(unit))
                bad.append(unit.name)
                break
    return bad


# --------------------------------------------------------------------------- finalize


class _Totals:
    """The report's counts, accumulated one unit at a time."""

    def __init__(self) -> None:
        self.clips: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.input_reasons: Counter[str] = Counter()
        self.judged: Counter[str] = Counter()
        self.passed: Counter[str] = Counter()
        self.realigned = 0
        self.analysed = 0
        self.retryable: Counter[str] = Counter()
        self.failed_units: list[dict[str, Any]] = []
        self.duplicates: dict[str, list[Any]] = {}

    def add_lines(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            self.outcomes[line["outcome"]] += 1
            if line["outcome"] == "rejected":
                self.input_reasons[line["reason"]] += 1

    def add_summary(self, summary: dict[str, Any]) -> None:
        self.clips.update(summary["clips"])
        for row in summary["filters"]:
            for name in ("language", "instance", "temporal"):
                if row[name] is not None:
                    self.judged[name] += 1
                    self.passed[name] += row[name]
            self.realigned += bool(row["realigned"])
            self.analysed += 1
        self.retryable.update(summary.get("retryable", {}))
        if summary.get("failed"):
            self.failed_units.append(summary["failed"])
        self.duplicates.update(summary.get("duplicates", {}))


def finalize(
    store: Store,
    units: list[Unit],
    problems: list[InputProblem],
    config: CurationConfig,
    fingerprint: str,
) -> dict[str, Any]:
    """Turn finished units into the release (idempotent: a crash anywhere in it is repaired by a rerun).

    Reads one unit's marker at a time; holds at most `INDEX_ROW_GROUP` index
    rows. Writes ``report.json`` after the shards and indexes, and
    ``_work/finalized.json`` after the card and Croissant, so that the
    presence of the latter means the release is whole.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    totals = _Totals()
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

        for unit in units:
            summary = _record(store, unit)
            if summary is None:
                raise CurationError(f"{store.display()}: unit {unit.name} has neither a result nor a failure record")
            split = unit.split
            stats = splits.setdefault(split, {"clips": 0, "seconds": 0, "shards": 0, "bytes": 0})
            shard_of = {}
            for part in summary["parts"]:
                final = release.shard_name(split, shard_counters[split])
                shard_counters[split] += 1
                source = f"{WORK_DIR}/{part['part']}"
                if store.exists(source):
                    store.move(source, final)
                    crash_point("finalize_move")
                elif store.size(final) != part["bytes"]:
                    raise CurationError(f"{store.display()}: shard part {part['part']} of unit {unit.name} is missing")
                shard_of[part["part"]] = final
                shard_info[final] = (part["bytes"], part["sha256"])
                stats["shards"] += 1
                stats["bytes"] += part["bytes"]
            for row in summary["rows"]:
                buffers[split].append({**{k: v for k, v in row.items() if k != "part"}, "shard": shard_of[row["part"]]})
                stats["clips"] += 1
                stats["seconds"] += row["clip.duration"]
                if len(buffers[split]) >= INDEX_ROW_GROUP:
                    flush(split)
            for line in summary["inputs"]:
                inputs_file.write((strict_json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
            totals.add_lines(summary["inputs"])
            totals.add_summary(summary)
        for split in SPLITS:
            flush(split)
        lines = [
            _input_line(InputItem(p.input, None), "rejected", p.reason, p.detail, 0, Counter())  # type: ignore[arg-type]
            for p in problems
        ]
        for line in lines:
            inputs_file.write((strict_json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
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
    store.write_atomic(FINALIZED, strict_json.dumps({"retained": retained}))
    if not retained:
        _remove_work(store, units)
    return report


def _report(
    totals: _Totals, splits: dict[str, dict[str, Any]], config: CurationConfig, fingerprint: str
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
        "realigned": totals.realigned,
        "analysed_clips": totals.analysed,
        "retryable": {"inputs": totals.retryable["inputs"], "clips": totals.retryable["clips"]},
        "failed_units": totals.failed_units,
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


def _remove_work(store: Store, units: list[Unit]) -> None:
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

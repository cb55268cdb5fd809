"""`curate`: inputs → plan → units (by an engine) → near-duplicates → finalize, resumable after a crash at any moment.

Wiring only; each step is its own module, in the order a clip goes:

1. **Plan** (`curation.plan`): inputs are read (`curation.inputs`), assigned a
   split by their video id, and grouped into units before anything is decoded.
2. **Units** (`curation.unit`): an engine (`curation.engines`) runs
   `UnitJob.process` on each unit not yet done: decode, caption, align,
   filter, encode, write the unit's parts, then its record (`curation.ledger`).
3. **Near-duplicates** (`curation.deduplicate`) across the finished units.
4. **Finalize** (`curation.finalize`): parts → shards, indexes, report, card.

Crash safety: every file appears under its name whole or not at all (see
`curation.writer.Store`), and each step is idempotent. On a restart with the
same command, parts already moved by an interrupted finalize are moved back,
finished units are checked (size and sha256 of each part) and kept, and only
the rest is processed, so the release ends byte-identical to an uninterrupted
run. Where the run had failures that may be transient, ``_work/`` is kept
(JSON only, the parts are in ``data/``) so that ``--retry-failed`` can redo
just those units; see docs/scale.md and docs/architecture.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from acav1m_hf import release
from acav1m_hf.lock import output_lock
from curation import ledger
from curation.analyse import LocalModelStages, ModelResult, ModelStages, ProfileFactory, load_profile, one_blas_thread
from curation.config import CurationConfig
from curation.crash import crash_point
from curation.deduplicate import deduplicate
from curation.engines.local import LocalEngine
from curation.engines.work import Engine
from curation.finalize import finalize
from curation.inputs import read_inputs
from curation.manifest import DEFAULT_URL_TEMPLATE
from curation.plan import Unit, fingerprint, plan
from curation.records import Clip, CurationError
from curation.segments import FetchOptions
from curation.unit import process_unit
from curation.writer import OutputFull, Store

__all__ = ["CurationError", "UnitJob", "curate"]


@dataclass(frozen=True)
class UnitJob:
    """Everything a worker needs to process any unit of one run (picklable: it travels to Ray workers)."""

    config: CurationConfig
    store: Store
    profile_factory: ProfileFactory | None = None
    fetch: FetchOptions = FetchOptions()
    fatal: ClassVar[tuple[type[BaseException], ...]] = (OutputFull,)

    @property
    def device(self) -> str:
        return self.config.device

    def shareable(self) -> bool:
        return self.store.fs.protocol not in ("memory", ("memory",))

    def process(self, unit: Unit, models: ModelStages | None = None) -> str:
        """Process ``unit`` and write its record (the last file it writes); return its name."""
        models = models or LocalModelStages(load_profile(self.config, self.profile_factory), self.config)
        record = process_unit(unit, self.config, self.store, ledger.part_path(unit), models, self.fetch)
        ledger.write_record(self.store, record)
        crash_point("unit_done")
        return unit.name

    def run_models(self, clips: list[Clip]) -> list[ModelResult]:
        with one_blas_thread():
            return LocalModelStages(load_profile(self.config, self.profile_factory), self.config).run(clips)

    def models_info(self) -> tuple[str, dict[str, str | None]]:
        profile = load_profile(self.config, self.profile_factory)
        return profile.name, profile.models()


def curate(
    inputs: list[str],
    out: str | Path,
    config: CurationConfig | None = None,
    engine: Engine | None = None,
    overwrite: bool = False,
    retry_failed: bool = False,
    profile_factory: ProfileFactory | None = None,
    log: Callable[[str], None] | None = None,
    fetch: FetchOptions | None = None,
    url_template: str = DEFAULT_URL_TEMPLATE,
) -> dict[str, Any]:
    """Curate ``inputs`` into the release ``out`` (a folder or any fsspec URL); return the report.

    Re-running the same command resumes an interrupted run (finished units are
    kept, the output ends byte-identical to an uninterrupted run); a
    different plan in a non-empty ``out`` is refused unless ``overwrite``.
    ``retry_failed`` redoes the units that failed and those with clips or
    inputs that failed for transient reasons (model errors, I/O errors).
    One run at a time writes ``out`` (`acav1m_hf.lock.OutputBusy` for a
    second); a full disk raises `curation.writer.OutputFull`, naming the file.
    Inputs fetched with yt-dlp (manifest rows naming a video id, built into a URL by ``url_template``, and page URLs)
    are fetched as ``fetch`` says (`curation.segments.FetchOptions`), through its cache.
    """
    config = config or CurationConfig()
    say = log or (lambda message: print(message, file=sys.stderr))
    store = Store(out)
    items, problems = read_inputs(
        inputs, exclude=store.local_path(), url_template=url_template
    )  # the output is never an input
    units = plan(items, config)
    planned = fingerprint(units, problems, config)
    with output_lock(store.url, store.display()):
        state = ledger.prepare(store, planned, overwrite)
        if state.complete:
            if not state.retained:
                ledger.remove_work(store, units)  # an interrupted clean-up: finish it
                return json.loads(store.read_text(release.REPORT))
            if not retry_failed:
                return json.loads(store.read_text(release.REPORT))
            ledger.reopen(store)
        ledger.start(store, planned, units)
        ledger.recall_parts(store, units)
        if retry_failed:
            redo = ledger.forget_retryable(store, units)
            if redo:
                say(f"{store.display()}: retrying {redo} unit(s) with failures")
        bad = ledger.check_done(store, units)
        if bad:
            say(
                f"{store.display()}: {len(bad)} finished unit(s) have missing or corrupt parts; redoing {', '.join(bad)}"
            )
        done = ledger.recorded_units(store, units)
        todo = [u for u in units if u.name not in done]
        if done:
            say(f"{store.display()}: resuming: {len(done)} of {len(units)} units already done, {len(todo)} to process")
        failures = (
            (engine or LocalEngine()).run(todo, UnitJob(config, store, profile_factory, fetch or FetchOptions()))
            if todo
            else []
        )
        for failure in failures:
            ledger.write_failure(store, failure)
        removed = deduplicate(store, ledger.finished_units(store, units), config)
        if removed:
            say(f"{store.display()}: removed {removed} near-duplicate clip(s)")
        report = finalize(store, units, problems, config, planned)
    if (items or problems) and report["counts"]["clips"]["kept"] == 0:
        failed = report["failed_units"]
        why = f"; {len(failed)} unit(s) failed, first: {failed[0]['error']}" if failed else ""
        raise CurationError(
            f"{store.display()}: no clip was kept from {len(items) + len(problems)} input(s); reasons: {report['reasons']}{why} "
            f"(see {store.display(release.INPUTS)})"
        )
    return report

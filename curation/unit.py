"""One unit of work: its inputs → clips → samples in shard parts, and the `UnitRecord` of what became of each.

For each input, clips are decoded (`curation.decode`) in batches, from the
segment fetched ahead for an input fetched with yt-dlp (`curation.segments`),
``decode_ahead`` batches ahead of the models in a background thread
(`curation.decode_ahead`: same batches, same order, same errors); a silent
clip is rejected before any model runs (`curation.filters.is_silent`); the
others go through the model stages (`curation.analyse`), are built into
samples (`curation.sample`) and, unless a filter rejects them, written into
the unit's parts at the names ``part_path`` gives. Every input and every clip
ends with an outcome; nothing is dropped silently.

Where the parts and the record are kept is the caller's business
(`curation.ledger`): this module writes through the names it is given, and
returns the record without writing it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from acav1m_hf.schema import flatten
from curation.analyse import ModelStages, one_blas_thread
from curation.config import CurationConfig
from curation.crash import crash_point
from curation.decode import decode_clips
from curation.decode_ahead import ahead
from curation.deduplicate import sample_vector
from curation.fetch_cache import Segment
from curation.filters import is_silent, keeps
from curation.inputs import input_line
from curation.plan import Unit
from curation.records import (
    Clip,
    ClipOutcome,
    FilterVerdicts,
    InputItem,
    InputLine,
    PartRecord,
    Rejected,
    UnitRecord,
)
from curation.sample import build_sample
from curation.segments import FetchOptions, prefetch, segment_clips
from curation.writer import ShardStats, ShardWriter, Store


def process_unit(
    unit: Unit,
    config: CurationConfig,
    store: Store,
    part_path: Callable[[int], str],
    models: ModelStages,
    fetch: FetchOptions | None = None,
) -> UnitRecord:
    """Curate one unit into the parts ``part_path(0)``, ``part_path(1)``... of ``store``; return its record.

    Deterministic: the same unit and config give the same parts, byte for
    byte, whichever process or machine runs it (one BLAS thread, see
    `curation.analyse.one_blas_thread`).
    """
    with one_blas_thread(), prefetch(unit.items, fetch or FetchOptions(), config.max_offset) as fetched:
        return _process_unit(unit, config, store, part_path, models, fetched)


def _process_unit(
    unit: Unit,
    config: CurationConfig,
    store: Store,
    part_path: Callable[[int], str],
    models: ModelStages,
    fetched: dict[int, Future[Segment]],
) -> UnitRecord:
    progress = _Progress(ShardWriter(store, part_path, config.shard_max_samples, config.shard_max_bytes))
    try:
        # On failure the fetches not started are cancelled before `ahead` joins its decoding thread, which could be
        # waiting for one of them (the inner context exits first).
        with ahead(_decoded(unit, fetched, config), config.decode_ahead) as decoded, _cancelled_on_failure(fetched):
            for position, event in decoded:
                if isinstance(event, list):
                    for outcome in _judge_batch(event, models, config):
                        progress.take(outcome)
                else:  # the input's end
                    progress.end_input(unit.items[position], event)
        stats = progress.writer.close()
    except BaseException as error:
        progress.writer.abort(error)
        raise
    return progress.record(unit.name, stats)


@contextmanager
def _cancelled_on_failure(fetched: dict[int, Future[Segment]]) -> Iterator[None]:
    """Cancel the unit's fetches not started yet when the block fails (a started one finishes on its own)."""
    try:
        yield
    except BaseException:
        for pending in fetched.values():
            pending.cancel()
        raise


@dataclass
class _Tally:
    """What became of one input's clips so far."""

    kept: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    model_failures: int = 0


@dataclass
class _Progress:
    """What a unit has written and counted so far: each clip's outcome taken in order, each input's line at its end."""

    writer: ShardWriter
    rows: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[InputLine] = field(default_factory=list)
    clip_outcomes: Counter[str] = field(default_factory=Counter)
    verdicts: list[FilterVerdicts] = field(default_factory=list)
    vectors: dict[str, str] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    retryable_clips: int = 0
    tally: _Tally = field(default_factory=_Tally)

    def take(self, outcome: ClipOutcome) -> None:
        """Count the clip's outcome and write its sample, unless it was rejected or its key is already written."""
        if outcome.verdicts is not None:
            self.verdicts.append(outcome.verdicts)
            self.tally.model_failures += outcome.failure is not None
        sample = outcome.sample
        if sample is None:
            self.tally.reasons[outcome.rejected] += 1
            return
        if sample.key in self.written:  # two inputs cut the same clip: keep the first
            self.tally.reasons["duplicate_key"] += 1
            return
        self.written.add(sample.key)
        part = self.writer.write(sample)
        crash_point("sample_written")  # its part still open: a kill leaves a .partial tar
        self.rows.append({"part": part.rsplit("/", 1)[-1], "key": sample.key, **flatten(sample.metadata)})
        vector = sample_vector(sample)
        if vector is not None:
            self.vectors[sample.key] = vector
        self.tally.kept += 1

    def end_input(self, item: InputItem, rejected: Rejected | None) -> None:
        """The input's line from its clips' tally (and the `Rejected` that ended its decoding, if any)."""
        tally = self.tally
        self.inputs.append(_input_line(item, tally, rejected))
        self.clip_outcomes.update(tally.reasons)
        self.clip_outcomes["kept"] += tally.kept
        self.retryable_clips += tally.model_failures
        self.tally = _Tally()

    def record(self, unit: str, stats: list[ShardStats]) -> UnitRecord:
        """The unit's record, once its parts are closed (``stats``)."""
        return UnitRecord(
            unit=unit,
            parts=[PartRecord(s.path.rsplit("/", 1)[-1], s.samples, s.bytes, s.sha256) for s in stats],
            rows=self.rows,
            inputs=self.inputs,
            clips=dict(self.clip_outcomes),
            filters=self.verdicts,
            retryable={"inputs": sum(1 for line in self.inputs if line.retryable), "clips": self.retryable_clips},
            vectors=self.vectors,
        )


def _input_line(item: InputItem, tally: _Tally, rejected: Rejected | None) -> InputLine:
    """The input's outcome: kept if any clip was; a decoder's `Rejected` after some clips stops it early."""
    kept, reasons = tally.kept, tally.reasons
    if rejected is None:
        reason = None if kept else (reasons.most_common(1)[0][0] if reasons else "no_clips")
        return input_line(item, "kept" if kept else "rejected", reason, "", kept, reasons, tally.model_failures > 0)
    if kept:  # the file broke after some clips: those are written and stay; the line says both
        detail = f"stopped early, {rejected.reason}: {rejected.detail}"
        return input_line(item, "kept", None, detail, kept, reasons, rejected.retryable)
    return input_line(item, "rejected", rejected.reason, rejected.detail, kept, reasons, rejected.retryable)


Decoded = tuple[int, list[Clip] | Rejected | None]
"""An input's position and one batch of its clips, or how its decoding ended: None, or the `Rejected` that ended it."""


def _decoded(unit: Unit, fetched: dict[int, Future[Segment]], config: CurationConfig) -> Iterator[Decoded]:
    """Every input's clips in batches, each input followed by how it ended: what `ahead` decodes in the background."""
    for position, item in enumerate(unit.items):
        clips = segment_clips(item, fetched[position], config) if item.ytdlp else decode_clips(item, config)
        try:
            for batch in batches(clips, config.batch_size):
                yield position, batch
        except Rejected as rejected:
            yield position, rejected
        else:
            yield position, None


def batches(clips: Iterator[Clip], size: int) -> Iterator[list[Clip]]:
    """``clips`` in lists of ``size``, the last one shorter (the model stages' batches; also `bench/gpu_paper.py`'s)."""
    batch: list[Clip] = []
    for clip in clips:
        batch.append(clip)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _judge_batch(clips: list[Clip], models: ModelStages, config: CurationConfig) -> Iterator[ClipOutcome]:
    """Each clip's outcome, in order of the audible clips after the silent ones (as they were always counted)."""
    audible = []
    for clip in clips:
        if is_silent(clip, config):
            yield ClipOutcome(None, rejected="silent_audio")
        else:
            audible.append(clip)
    if not audible:
        return
    for result in models.run(audible):
        sample = build_sample(result.decision, result.caption, models.profile, config)
        alignment = sample.metadata["alignment"]
        verdicts = FilterVerdicts(
            **{name: alignment[name]["passed"] for name in ("language", "instance", "temporal")},
            flags=alignment["flags"],
            realigned=result.decision.realigned,
        )
        if keeps(alignment["passed"], config):
            yield ClipOutcome(sample, verdicts=verdicts, failure=result.failure)
        else:
            yield ClipOutcome(None, "failed_" + "+".join(alignment["flags"]), verdicts, result.failure)

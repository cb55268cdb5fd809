"""The curation pipeline: plan → process units → finalize.

1. **Plan.** Inputs are read (`curation.inputs`), assigned a split by their
   video id, and grouped into units of work before anything is decoded. The
   plan is deterministic, so a unit is what an engine schedules, retries and
   resumes.
2. **Process a unit** (`process_unit`): decode each input into clips, caption,
   align, filter, encode, and write the samples into the unit's shard parts
   under ``OUT/_work/``. A unit ends by atomically writing its ``.done.json``
   (per-shard stats, index rows, per-input and per-clip outcomes); a unit
   with that marker is never redone.
3. **Finalize** (`finalize`): rename the parts to ``data/{split}-{n:05d}.tar``
   in plan order, write the Parquet index, ``inputs.jsonl``, ``report.json``,
   the dataset card and ``croissant.json``, then remove ``_work/``.

Every input and every clip ends with an outcome; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acav1m_hf import release
from acav1m_hf.schema import SCHEMA_VERSION, SPLITS, arrow_schema, flatten
from curation import __version__
from curation.captioning import CaptionResult, caption_batch
from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.filters import realign, rms_dbfs
from curation.inputs import InputProblem, read_inputs
from curation.profiles import Profile, build_profile
from curation.records import Clip, InputItem, Rejected
from curation.roles import Analysis, Score
from curation.sample import build_sample, split_of
from curation.writer import ShardWriter

WORK_DIR = "_work"


class CurationError(RuntimeError):
    """The run as a whole cannot go on (e.g. it wrote nothing from non-empty input)."""


@dataclass(frozen=True)
class Unit:
    split: str
    index: int
    items: tuple[InputItem, ...]

    @property
    def name(self) -> str:
        return f"{self.split}-u{self.index:05d}"


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
    payload = {
        "config": config.to_dict(),
        "units": [[u.name, [asdict(i) for i in u.items]] for u in units],
        "problems": [asdict(p) for p in problems],
        "version": __version__,
        "schema": SCHEMA_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- one unit


_PROFILES: dict[str, Profile] = {}


def _profile(config: CurationConfig) -> Profile:
    """One profile per process and config: models load once per worker, not once per unit."""
    key = json.dumps(config.to_dict(), sort_keys=True, default=str)
    if key not in _PROFILES:
        _PROFILES[key] = build_profile(config)
    return _PROFILES[key]


def process_unit(unit: Unit, config: CurationConfig, work: Path) -> dict[str, Any]:
    """Curate one unit into ``work``; return (and write) its ``.done.json`` summary."""
    marker = work / f"{unit.name}.done.json"
    if marker.exists():
        return json.loads(marker.read_text())
    profile = _profile(config)
    writer = ShardWriter(
        lambda part: work / f"{unit.name}-p{part:03d}.tar", config.shard_max_samples, config.shard_max_bytes
    )
    rows: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    clip_outcomes: Counter[str] = Counter()
    filters: list[dict[str, Any]] = []
    for item in unit.items:
        kept, reasons = 0, Counter()
        try:
            for batch in _batches(decode_clips(item, config), config.batch_size):
                for outcome in _curate_batch(batch, profile, config):
                    if isinstance(outcome, str):
                        reasons[outcome] += 1
                        continue
                    sample, filter_row = outcome
                    filters.append(filter_row)
                    if sample is None:
                        reasons["failed_" + "+".join(filter_row["flags"])] += 1
                        continue
                    part = writer.write(sample)
                    rows.append({"part": Path(part).name, "key": sample.key, **flatten(sample.metadata)})
                    kept += 1
        except Rejected as rejected:
            inputs.append(_input_line(item, "rejected", rejected.reason, rejected.detail, kept, reasons))
            clip_outcomes.update(reasons)
            clip_outcomes["kept"] += kept
            continue
        reason = None if kept else (reasons.most_common(1)[0][0] if reasons else "no_clips")
        inputs.append(_input_line(item, "kept" if kept else "rejected", reason, "", kept, reasons))
        clip_outcomes.update(reasons)
        clip_outcomes["kept"] += kept
    parts = [
        {"part": Path(s.path).name, "samples": s.samples, "bytes": s.bytes, "sha256": s.sha256} for s in writer.close()
    ]
    summary = {
        "unit": unit.name,
        "parts": parts,
        "rows": rows,
        "inputs": inputs,
        "clips": dict(clip_outcomes),
        "filters": filters,
    }
    _write_atomic(marker, json.dumps(summary, sort_keys=True, default=str))
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


def _curate_batch(clips: list[Clip], profile: Profile, config: CurationConfig) -> Iterator[Any]:
    """Yield per clip either a rejection reason (str) or ``(sample or None, filter outcome)``."""
    audible = []
    for clip in clips:
        if rms_dbfs(clip.audio) < config.silence_dbfs:
            yield "silent_audio"
        else:
            audible.append(clip)
    if not audible:
        return
    for clip, caption in zip(audible, caption_batch(audible, profile), strict=True):
        analysis = _analyse(profile, clip, caption)
        decision = realign(clip, analysis, caption.text, profile.aligner, config)
        sample = build_sample(decision, caption, profile, config)
        alignment = sample.metadata["alignment"]
        row = {name: alignment[name]["passed"] for name in ("language", "instance", "temporal")}
        row.update(flags=alignment["flags"], realigned=decision.realigned)
        yield (sample if alignment["passed"] or config.keep_flagged else None), row


def _analyse(profile: Profile, clip: Clip, caption: CaptionResult) -> Analysis:
    """Run the aligner; a failure is recorded on the clip as null scores with the error as reason."""
    try:
        return profile.aligner.analyse(clip, caption.text)
    except Exception as exc:  # noqa: BLE001 - one clip's failure stays with that clip
        reason = f"aligner failed: {type(exc).__name__}: {exc}"[:300]
        missing = Score.missing(reason)
        return Analysis(missing, missing, None, reason, None, None, reason, None, reason)


def _input_line(
    item: InputItem, outcome: str, reason: str | None, detail: str, kept: int, reasons: Counter[str]
) -> dict[str, Any]:
    return {
        "input": item.path,
        "video_id": item.video_id,
        "outcome": outcome,
        "reason": reason,
        "detail": detail or None,
        "clips": kept,
        "clips_rejected": dict(sorted(reasons.items())),
    }


# --------------------------------------------------------------------------- the run


Engine = Callable[[list[Unit], CurationConfig, Path], list[dict[str, Any]]]


def local_engine(units: list[Unit], config: CurationConfig, work: Path, progress: bool = True) -> list[dict[str, Any]]:
    """Process units one after another in this process."""
    from tqdm import tqdm

    return [process_unit(u, config, work) for u in tqdm(units, desc="units", unit="unit", disable=not progress)]


def curate(
    inputs: list[str],
    out: str | Path,
    config: CurationConfig | None = None,
    engine: Engine | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Curate ``inputs`` into the release folder ``out``; return the report.

    Re-running the same command resumes an interrupted run (finished units are
    kept); a different plan in a non-empty ``out`` is refused unless ``overwrite``.
    """
    config = config or CurationConfig()
    root = Path(out)
    items, problems = read_inputs(inputs)
    units = plan(items, config)
    fingerprint = plan_fingerprint(units, problems, config)
    work = root / WORK_DIR
    _prepare(root, work, fingerprint, overwrite)
    if (root / release.REPORT).exists() and not work.exists():
        return json.loads((root / release.REPORT).read_text())  # already complete
    work.mkdir(parents=True, exist_ok=True)
    _write_atomic(work / "plan.json", json.dumps({"fingerprint": fingerprint}))
    summaries = (engine or local_engine)(units, config, work)
    report = finalize(root, units, summaries, problems, config, fingerprint)
    if items and report["counts"]["clips"]["kept"] == 0:
        raise CurationError(
            f"{root}: no clip was kept from {len(items)} input(s); reasons: {report['reasons']} (see {root / release.INPUTS})"
        )
    return report


def _prepare(root: Path, work: Path, fingerprint: str, overwrite: bool) -> None:
    """Refuse to mix two different runs in one folder; never delete a release unasked."""
    if overwrite:
        for name in (release.DATA_DIR, release.METADATA_DIR, WORK_DIR):
            shutil.rmtree(root / name, ignore_errors=True)
        for name in (release.REPORT, release.INPUTS, release.CARD, release.CROISSANT):
            (root / name).unlink(missing_ok=True)
        return
    previous = None
    if (work / "plan.json").exists():
        previous = json.loads((work / "plan.json").read_text())["fingerprint"]
    elif (root / release.REPORT).exists():
        previous = json.loads((root / release.REPORT).read_text()).get("plan")
    elif root.exists() and any(root.iterdir()):
        raise CurationError(
            f"{root}: folder exists and is not an acav1m release; choose another folder or pass --overwrite"
        )
    if previous is not None and previous != fingerprint:
        raise CurationError(
            f"{root}: holds a run with other inputs or settings; pass --overwrite to replace it, or use another folder"
        )


def finalize(
    root: Path,
    units: list[Unit],
    summaries: list[dict[str, Any]],
    problems: list[InputProblem],
    config: CurationConfig,
    fingerprint: str,
) -> dict[str, Any]:
    """Turn finished units into the release folder (idempotent: safe to rerun after a crash)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from acav1m_hf.card import write_card
    from acav1m_hf.croissant import write_croissant

    work = root / WORK_DIR
    (root / release.DATA_DIR).mkdir(parents=True, exist_ok=True)
    (root / release.METADATA_DIR).mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for unit, summary in zip(units, summaries, strict=True):
        by_split[unit.split].append(summary)
    splits: dict[str, dict[str, Any]] = {}
    schema = arrow_schema()
    for split, split_summaries in by_split.items():
        shard_of: dict[str, str] = {}
        shards = 0
        bytes_ = 0
        for summary in split_summaries:
            for part in summary["parts"]:
                final = release.shard_name(split, shards)
                source = work / part["part"]
                if source.exists():
                    os.replace(source, root / final)
                elif not (root / final).exists():
                    raise CurationError(f"{root}: shard part {part['part']} of unit {summary['unit']} is missing")
                shard_of[f"{summary['unit']}/{part['part']}"] = final
                shards += 1
                bytes_ += part["bytes"]
        rows = [
            {**{k: v for k, v in row.items() if k != "part"}, "shard": shard_of[f"{s['unit']}/{row['part']}"]}
            for s in split_summaries
            for row in s["rows"]
        ]
        index = root / release.index_name(split)
        if rows:
            table = pa.Table.from_pylist(rows, schema=schema)
            temporary = index.with_name(f".{index.name}.partial")
            pq.write_table(table, temporary)
            os.replace(temporary, index)
            splits[split] = {
                "clips": len(rows),
                "seconds": round(sum(r["clip.duration"] for r in rows), 3),
                "shards": shards,
                "bytes": bytes_,
            }
    lines = [line for s in summaries for line in s["inputs"]]
    lines += [
        {
            "input": p.input,
            "video_id": None,
            "outcome": "rejected",
            "reason": p.reason,
            "detail": p.detail,
            "clips": 0,
            "clips_rejected": {},
        }
        for p in problems
    ]
    _write_atomic(root / release.INPUTS, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    report = _report(lines, summaries, splits, config, fingerprint)
    _write_atomic(root / release.REPORT, json.dumps(report, indent=2, sort_keys=True) + "\n")
    if splits:  # a run that kept nothing has no dataset to describe, only its report
        write_card(root, report)
        write_croissant(root)
    shutil.rmtree(work, ignore_errors=True)
    return report


def _report(
    lines: list[dict[str, Any]],
    summaries: list[dict[str, Any]],
    splits: dict[str, dict[str, Any]],
    config: CurationConfig,
    fingerprint: str,
) -> dict[str, Any]:
    clips: Counter[str] = Counter()
    for summary in summaries:
        clips.update(summary["clips"])
    filters = [row for s in summaries for row in s["filters"]]
    pass_rates: dict[str, float | None] = {}
    for name in ("language", "instance", "temporal"):
        judged = [row[name] for row in filters if row[name] is not None]
        pass_rates[name] = round(sum(judged) / len(judged), 6) if judged else None
    kept_clips = clips.pop("kept", 0)
    input_outcomes = Counter(line["outcome"] for line in lines)
    return {
        "acav1m_version": __version__,
        "schema": SCHEMA_VERSION,
        "plan": fingerprint,
        "config": json.loads(json.dumps(config.to_dict())),  # as it reads back from report.json
        "counts": {
            "inputs": {"total": len(lines), "kept": input_outcomes["kept"], "rejected": input_outcomes["rejected"]},
            "clips": {"total": kept_clips + sum(clips.values()), "kept": kept_clips, "rejected": sum(clips.values())},
        },
        "reasons": {
            "inputs": dict(sorted(Counter(line["reason"] for line in lines if line["outcome"] == "rejected").items())),
            "clips": dict(sorted(clips.items())),
        },
        "splits": splits,
        "pass_rates": pass_rates,
        "realigned": sum(1 for row in filters if row["realigned"]),
        "analysed_clips": len(filters),
    }


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)

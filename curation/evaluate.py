"""``acav1m evaluate-alignment``: how well a profile's alignment filters do on real in-sync clips and variants of them.

From each audible clip of the inputs (assumed in sync, as their authors made
them), `curation.variants` makes variants whose truth is known: the audio
delayed by each offset in the PCM itself and through the container's stream
start times, and the soundtrack of another clip. Every variant goes through
`curation.analyse.run_model_stages` (the code ``curate`` runs) and is judged by
`curation.sample.alignment_metadata` (the verdicts ``curate`` records); the
figures (`curation.evaluate_report`) are written to ``REPORT_DIR/report.json``
and ``report.md``. Nothing here times anything.

Inputs are read as ``curate`` reads them (files, folders, manifests), and each
clip is decoded twice (once for the soundtracks the swaps need, once for the
variants), so that memory holds one clip's frames at a time.
"""

from __future__ import annotations

import csv
import json
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from acav1m_hf import strict_json
from curation.analyse import ModelResult, ProfileFactory, load_profile, one_blas_thread, run_model_stages
from curation.calibration import calibration_state
from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.evaluate_report import (
    CONTAINER_SHIFT,
    CONTENT_SHIFT,
    IN_SYNC,
    SWAPPED,
    UNKNOWN_KIND,
    AlignmentReport,
    Exclusion,
    VariantOutcome,
    figures,
    to_markdown,
)
from curation.filters import is_silent
from curation.inputs import read_inputs
from curation.records import Clip, InputItem, Rejected
from curation.sample import alignment_metadata
from curation.variants import delayed, measured_delay, same_soundtrack, swapped, write_container_shift

DEFAULT_OFFSETS = (-0.8, -0.4, -0.12, 0.2, 0.52, 0.96)
"""Audio delays, seconds: both signs, under and over one Synchformer class (0.2 s), and off the 40-ms frame grid."""
REPORT_FILES = ("report.json", "report.md")
TRUTH_MARGIN = 0.25
"""Seconds searched beyond a container shift's nominal delay when its true delay is measured."""
_KIND = re.compile(r"^[a-z0-9_]+$")


@dataclass
class _Variant:
    """A clip to analyse and what is known about it, before the model stages run."""

    clip: Clip
    variant: str
    nominal: float | None
    truth: float | None
    truth_reason: str | None = None
    partner: str | None = None


def check_offsets(offsets: list[float], config: CurationConfig) -> list[float]:
    """The offsets, sorted; an error naming the offset that is not finite, is 0 or lies outside ±max_offset."""
    for offset in offsets:
        if not math.isfinite(offset) or offset == 0 or abs(offset) > config.max_offset:
            raise ValueError(
                f"--offsets: {offset} must be a non-zero number of seconds within ±{config.max_offset} "
                "(max_offset: the profile searches no further)"
            )
    if not offsets:
        raise ValueError("--offsets: give at least one offset")
    return sorted(set(offsets))


def read_kinds(path: str | Path) -> list[tuple[str, str]]:
    """``(path, kind)`` rows of a CSV (columns ``path,kind``) or JSON file (a list of such objects).

    A row's relative path is taken from the kinds file's folder; a bare file
    name matches an input of that name in any folder (`kind_of`).
    """
    path = Path(path)
    try:
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        else:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the kinds manifest: {exc}") from exc
    if not isinstance(rows, list):
        raise ValueError(f"{path}: a kinds manifest is a list of {{path, kind}} rows")
    kinds = []
    for number, row in enumerate(rows, start=1):
        where = f"{path}: row {number}"
        if not isinstance(row, dict) or not row.get("path") or not row.get("kind"):
            raise ValueError(f"{where}: needs a 'path' and a 'kind'")
        kind = str(row["kind"]).strip()
        if not _KIND.match(kind):
            raise ValueError(f"{where}: kind {kind!r} must be lower-case letters, digits and '_'")
        given = str(row["path"]).strip()
        bare = "/" not in given and "\\" not in given
        kinds.append((given if bare else str((path.parent / given).resolve()), kind))
    return kinds


def kind_of(item: InputItem, kinds: list[tuple[str, str]]) -> tuple[str, str | None]:
    """The input's kind and the kinds row that gave it (`UNKNOWN_KIND` and None when no row names it)."""
    local = None if "://" in item.path else str(Path(item.path).resolve())
    for given, kind in kinds:
        if given in (item.path, item.given, local) or given == Path(item.path).name:
            return kind, given
    return UNKNOWN_KIND, None


def evaluate(
    inputs: list[str],
    report_dir: str | Path,
    config: CurationConfig,
    offsets: list[float] | None = None,
    kinds_path: str | Path | None = None,
    overwrite: bool = False,
    profile_factory: ProfileFactory | None = None,
) -> AlignmentReport:
    """Make the variants, run the profile's model stages on them, and write ``report.json`` and ``report.md``."""
    report_dir = Path(report_dir)
    offsets = check_offsets(list(DEFAULT_OFFSETS if offsets is None else offsets), config)
    existing = [name for name in REPORT_FILES if (report_dir / name).exists()]
    if existing and not overwrite:
        raise ValueError(f"{report_dir}: already holds {', '.join(existing)}; pass --overwrite to replace them")
    kinds = read_kinds(kinds_path) if kinds_path else []
    items, problems = read_inputs(inputs, exclude=report_dir)
    excluded = [Exclusion(p.input, p.reason, p.detail) for p in problems]
    soundtracks = _soundtracks(items, config, excluded)
    clip_kinds = {name: kind_of(clip.item, kinds)[0] for name, clip in soundtracks.items()}
    partners = _partners(soundtracks, clip_kinds, config, excluded)
    recordings = _recordings(soundtracks, config)
    profile = load_profile(config, profile_factory)
    outcomes: list[VariantOutcome] = []
    used_kinds = {kind_of(item, kinds)[1] for item in items}
    with tempfile.TemporaryDirectory(prefix="acav1m-evaluate-") as scratch, one_blas_thread():
        audible = {clip.item for clip in soundtracks.values()}
        for item in [item for item in items if item in audible]:  # the others are listed as left out already
            kind = kind_of(item, kinds)[0]
            for clip in _audible_clips(item, config):
                name = _name(clip)
                # The container shifts' files stay until their clips are analysed: the lip path may decode them again.
                with tempfile.TemporaryDirectory(dir=scratch) as files:
                    variants = _variants(clip, offsets, config, Path(files), excluded)
                    if name in partners:
                        other = partners[name]
                        variants.append(
                            _Variant(swapped(clip, soundtracks[other].audio), SWAPPED, None, None, partner=other)
                        )
                    variants = _audible(variants, name, config, excluded)
                    for batch in range(0, len(variants), config.batch_size):
                        chunk = variants[batch : batch + config.batch_size]
                        results = run_model_stages([v.clip for v in chunk], profile, config)
                        outcomes += [
                            _outcome(v, r, name, kind, recordings[name], config)
                            for v, r in zip(chunk, results, strict=True)
                        ]
    groups = {"all": outcomes} | {k: [o for o in outcomes if o.kind == k] for k in sorted({o.kind for o in outcomes})}
    report = AlignmentReport(
        profile=profile.name,
        models=profile.models(),
        calibration=calibration_state(profile.aligner.name, config),
        config=config.to_dict(),
        offsets=offsets,
        inputs=[item.recorded for item in items],
        variants=outcomes,
        excluded=excluded,
        figures={group: figures(members, config.realign_min_confidence) for group, members in groups.items()},
        unused_kinds=[given for given, _ in kinds if given not in used_kinds],
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(strict_json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    (report_dir / "report.md").write_text(to_markdown(report), encoding="utf-8")
    return report


def _name(clip: Clip) -> str:
    return f"{clip.item.recorded}#{clip.index}"


def _label(name: str, variant: str, nominal: float | None) -> str:
    """How a left-out variant is named: its clip, kind of variant and requested delay."""
    return f"{name} {variant}" if not nominal else f"{name} {variant} {nominal:+g} s"


def _audible_clips(item: InputItem, config: CurationConfig) -> Iterator[Clip]:
    """The clips ``curate`` would analyse (decodable, not silent); the first pass has recorded the others."""
    try:
        for clip in decode_clips(item, config):
            if not is_silent(clip, config):
                yield clip
    except Rejected:
        return


def _soundtracks(items: list[InputItem], config: CurationConfig, excluded: list[Exclusion]) -> dict[str, Clip]:
    """Clip name → every audible clip without its frames; inputs and clips that give none are recorded as left out."""
    tracks = {}
    for item in items:
        try:
            for clip in decode_clips(item, config):
                if is_silent(clip, config):
                    excluded.append(Exclusion(_name(clip), "silent_audio", f"below {config.silence_dbfs} dBFS"))
                else:
                    tracks[_name(clip)] = replace(clip, frames=clip.frames[:0])
        except Rejected as rejected:
            excluded.append(Exclusion(item.recorded, rejected.reason, rejected.detail))
    return tracks


def _partners(
    tracks: dict[str, Clip], kinds: dict[str, str], config: CurationConfig, excluded: list[Exclusion]
) -> dict[str, str]:
    """Each clip's swap partner: the next clip (in input order, cyclically) of another video with another soundtrack,
    one of the same content kind first.

    The same kind makes the harder and the telling mismatch: another person's
    voice on a talking face (a dubbed or voiced-over clip) is what lip synchrony
    must reject, where a LEGO model's clatter on that face would send it down
    another path of the aligner (no speech heard) and test nothing of the lips.
    A clip whose kind has no other usable video (audible, another soundtrack)
    takes the next clip of any kind; clips the kinds file does not name share
    the kind ``unknown``, and so prefer each other. The
    same recording in another container (a soundtrack that matches at some
    lag, `curation.variants.same_soundtrack`) is no mismatch, and a soundtrack
    whose part as long as the clip is silent would be rejected before any
    model runs, so both are passed over.
    """
    names = list(tracks)
    partners = {}
    for i, name in enumerate(names):
        clip = tracks[name]
        following = names[i + 1 :] + names[:i]
        for other in sorted(following, key=lambda other: kinds[other] != kinds[name]):  # stable: input order kept
            candidate = tracks[other]
            if (
                candidate.item.video_id != clip.item.video_id
                and not is_silent(swapped(clip, candidate.audio), config)
                and not same_soundtrack(clip.audio, candidate.audio, config.max_offset)
            ):
                partners[name] = other
                break
        else:
            excluded.append(
                Exclusion(name, "no_swap_partner", "no clip of another video has a different, audible soundtrack")
            )
    return partners


def _recordings(tracks: dict[str, Clip], config: CurationConfig) -> dict[str, str]:
    """Clip name → its recording: the first clip (in input order) whose soundtrack is this one's at some lag.

    The same recording in another container, or an excerpt of it, is one
    recording: a calibration is judged leaving all of its copies out at once.
    """
    names, recordings = list(tracks), {}
    for i, name in enumerate(names):
        recordings[name] = next(
            (
                recordings[other]
                for other in names[:i]
                if same_soundtrack(tracks[other].audio, tracks[name].audio, config.max_offset)
                or same_soundtrack(tracks[name].audio, tracks[other].audio, config.max_offset)
            ),
            name,
        )
    return recordings


def _variants(
    clip: Clip, offsets: list[float], config: CurationConfig, scratch: Path, excluded: list[Exclusion]
) -> list[_Variant]:
    """The in-sync clip, its content shifts (exact truth) and its container shifts (truth measured), written in
    ``scratch``."""
    variants = [_Variant(clip, IN_SYNC, 0.0, 0.0)]
    for offset in offsets:
        shifted, truth = delayed(clip, offset)
        variants.append(_Variant(shifted, CONTENT_SHIFT, offset, truth))
    for offset in offsets:
        path = write_container_shift(clip, offset, scratch / f"shift{offset:+.3f}.mp4")
        window = replace(config, clip_seconds=clip.duration + 2 * config.max_offset + 1, max_clips_per_input=1)
        try:
            decoded = next(decode_clips(InputItem(str(path), clip.item.video_id), window))
        except Rejected as rejected:
            excluded.append(Exclusion(_label(_name(clip), CONTAINER_SHIFT, offset), rejected.reason, rejected.detail))
            continue
        truth, peak = measured_delay(clip.audio, decoded.audio, abs(offset) + TRUTH_MARGIN)
        reason = None if truth is not None else f"its audio matches the original's at no lag (peak {peak:.2f})"
        if reason:
            excluded.append(Exclusion(_label(_name(clip), CONTAINER_SHIFT, offset), "no_measured_truth", reason))
        variants.append(
            _Variant(replace(decoded, item=clip.item, index=clip.index), CONTAINER_SHIFT, offset, truth, reason)
        )
    return variants


def _audible(variants: list[_Variant], name: str, config: CurationConfig, excluded: list[Exclusion]) -> list[_Variant]:
    """The variants ``curate`` would analyse: one whose audio became silent is rejected before any model runs."""
    for variant in variants:
        if is_silent(variant.clip, config):
            excluded.append(
                Exclusion(_label(name, variant.variant, variant.nominal), "silent_audio", "after the change")
            )
    return [variant for variant in variants if not is_silent(variant.clip, config)]


def _outcome(
    variant: _Variant, result: ModelResult, name: str, kind: str, recording: str, config: CurationConfig
) -> VariantOutcome:
    """The verdicts ``curate`` would record on this variant (`curation.sample.alignment_metadata`), raw values beside."""
    alignment = alignment_metadata(result.decision, config)
    first = result.decision.first or result.decision.analysis
    instance, sync = alignment["instance"], alignment["sync"]
    return VariantOutcome(
        clip=name,
        kind=kind,
        variant=variant.variant,
        nominal=variant.nominal,
        truth=variant.truth,
        truth_reason=variant.truth_reason,
        partner=variant.partner,
        instance=instance["score"],
        instance_reason=instance["reason"],
        temporal=alignment["temporal"]["score"],
        offset=sync["offset"],
        confidence=sync["confidence"],
        offset_reason=sync["reason"],
        realigned=sync["realigned"],
        flags=alignment["flags"],
        passed_before=alignment["passed"] and not sync["realigned"],
        passed=alignment["passed"],
        recording=recording,
        raw_instance=first.instance.raw,
        raw_windows=first.temporal_raw if first.temporal_raw is not None else first.temporal_windows,
        cue=first.cue,
    )

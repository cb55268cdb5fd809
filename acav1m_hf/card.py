"""The dataset card (``README.md``) of a release folder.

The card is what makes the folder a Hub dataset repository: its YAML header
tells ``datasets`` which files form which split (``configs``) and what a sample
is (``dataset_info.features``, generated from `acav1m_hf.schema`, so that
``load_dataset`` never has to guess the features from five samples). Its body
documents the release (counts and pass rates from the curation report), the
schema (generated, so it cannot drift) and the full datasheet
(`acav1m_hf.datasheet`).

The card is rendered from `acav1m_hf.facts.ReleaseFacts` alone (`render`), so
curation (from what it holds), the CLI and tests (from a folder) produce the
same text for the same release; split figures come from the release's files,
outcomes from the report, as `acav1m_hf.facts` explains. Only a small markdown
subset is written (headings, paragraphs, lists, tables, fenced code), which both
the Hub and ``acav1m site`` render; the "How to load" section is the data file
``snippets/how_to_load.md`` (`how_to_load`), which the site shows too.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from acav1m_hf import datasheet
from acav1m_hf.facts import FILTERS, ReleaseFacts, SplitFacts, format_hours
from acav1m_hf.release import CARD, CROISSANT, DATA_DIR, write_atomic
from acav1m_hf.schema import MEMBERS, SCHEMA_VERSION, SPLITS, Field, index_columns

TASK_CATEGORIES = (
    "video-classification",
    "audio-classification",
    "object-detection",
    "image-segmentation",
    "video-text-to-text",
    "feature-extraction",
)
"""Hub task categories (ids from huggingface.js ``PIPELINE_DATA`` that are not hidden for datasets): class labels,
localization boxes, segmentation masks, captions and embeddings."""

TAGS = (
    "audio-visual",
    "video",
    "audio",
    "sound-source-localization",
    "audio-visual-synchronization",
    "cross-modal-retrieval",
    "webdataset",
    "croissant",
)

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
)
"""Upper bounds (exclusive) of the Hub's ``size_categories`` values."""
LICENCE_COLUMNS = ("role", "model", "package", "licence", "stated_in")
"""The columns of the report's ``model_licences`` rows, in the card's table order."""


def size_category(n: int) -> str:
    """The Hub ``size_categories`` value for ``n`` examples."""
    for bound, label in SIZE_CATEGORIES:
        if n < bound:
            return label
    return "n>1T"


# --------------------------------------------------------------------------- YAML


def metadata(facts: ReleaseFacts) -> dict[str, Any]:
    """The YAML header as a dict: license, tasks, configs (data_files per split with shards) and dataset_info."""
    from datasets import DatasetInfo

    from acav1m_hf.schema import hf_features

    stats = facts.with_shards
    features = DatasetInfo(features=hf_features())._to_yaml_dict()["features"]
    info: dict[str, Any] = {"config_name": "default", "features": features}
    # num_bytes is the Arrow size of a split; media stay encoded bytes in Arrow, so the shards' size is a close,
    # honest stand-in. datasets needs the key to accept `splits`, and then checks num_examples on every load.
    splits = [
        {"name": s, "num_bytes": v.bytes, "num_examples": v.clips} for s, v in stats.items() if v.clips is not None
    ]
    if len(splits) == len(stats):
        info["splits"] = splits
        info["dataset_size"] = sum(v.bytes for v in stats.values())
    info["download_size"] = sum(v.bytes for v in stats.values())
    return {
        "license": datasheet.LICENSE_ID,
        "pretty_name": datasheet.NAME,
        "version": facts.curation.release_version,
        "task_categories": list(TASK_CATEGORIES),
        "tags": list(TAGS),
        "size_categories": [size_category(facts.clips)],
        "configs": [
            {
                "config_name": "default",
                "default": True,
                "data_files": [{"split": s, "path": f"{DATA_DIR}/{s}-*.tar"} for s in stats],
            }
        ],
        "dataset_info": info,
    }


# --------------------------------------------------------------------------- body


def _cell(value: Any) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _type(field: Field) -> str:
    kind = f"`list<{field.item}>`" if field.kind == "list" else f"`{field.kind}`"
    return kind if field.required else f"{kind} or null"


def _describe(field: Field) -> str:
    text = field.description
    if field.unit_interval and "[0, 1]" not in text:
        text += " In [0, 1]."
    if field.choices:
        text += " One of: " + ", ".join(field.choices) + "."
    return text


def _overview(facts: ReleaseFacts) -> str:
    summary = "\n".join(f"- **{e.question}.** {e.answer}" for e in datasheet.SUMMARY.entries)
    return f"""# {datasheet.NAME}

{datasheet.DESCRIPTION}

This folder is one release in the ACAV-1M format, curated by the acav1m reference software: {facts.clips} clips
({format_hours(facts.seconds)} hours) in WebDataset shards (`data/{{split}}-{{n:05d}}.tar`), a Parquet index per split
(`metadata/{{split}}.parquet`), this card, and a Croissant description (`{CROISSANT}`). The counts below are
this release's own; the datasheet further down is the one published with ACAV-1M and describes the full dataset.

Website: {datasheet.WEBSITE}

{summary}"""


@functools.cache
def how_to_load() -> str:
    """The "How to load" section's markdown, without its heading: ``datasets``, this package, the index, Croissant."""
    return (resources.files("acav1m_hf") / "snippets" / "how_to_load.md").read_text(encoding="utf-8").rstrip("\n")


def _schema() -> str:
    members = _table(
        ("Member", "Required", "Description"),
        [(f"`{m.extension}`", "yes" if m.required else "no", m.description) for m in MEMBERS],
    )
    fields = _table(
        ("Field", "Type", "Description"),
        [("`key`", "`string`", "Sample key: the tar member prefix, unique in the release, without dots.")]
        + [(f"`{name}`", _type(f), _describe(f)) for name, f in index_columns()],
    )
    return f"""## Schema (version {SCHEMA_VERSION})

Each sample is a group of tar members named `{{key}}.{{extension}}`:

{members}

The `json` member holds the metadata below (shown flattened: `alignment.instance.score` is
`json["alignment"]["instance"]["score"]`; `shard` exists only in the Parquet index). A value that a stage could not
compute is null, and the `reason` field of the same struct says why.

{fields}"""


def _split_row(split: SplitFacts) -> tuple[Any, ...]:
    clips = split.clips if split.clips is not None else "unknown"
    return (split.name, clips, split.hours, len(split.shards), f"{split.bytes / 1e6:.2f}")


def _release(facts: ReleaseFacts) -> str:
    curation = facts.curation
    parts = ["## This release"]
    rows = [_split_row(split) for split in facts.with_shards.values()]
    parts.append(_table(("Split", "Clips", "Hours", "Shards", "Size (MB)"), rows))
    missing = [s for s in SPLITS if s not in facts.with_shards]
    if missing:
        parts.append(f"Splits without clips in this release: {', '.join(missing)}.")

    rows = [
        (what, *(value.get(k, "") for k in ("total", "kept", "rejected"))) for what, value in curation.counts.items()
    ]
    if rows:
        parts.append("Curation outcomes:\n\n" + _table(("", "Total", "Kept", "Rejected"), rows))
    rows = [(what, reason, n) for what, by_reason in curation.reasons.items() for reason, n in by_reason.items()]
    if rows:
        parts.append("Rejection reasons:\n\n" + _table(("Of", "Reason", "Count"), rows))

    if curation.pass_rates:
        thresholds = curation.thresholds
        rows = [(n, "" if thresholds[n] is None else thresholds[n], curation.rate(n)) for n in FILTERS]
        analysed = curation.analysed_clips
        scope = f" over the {analysed} clips that reached the filters" if analysed is not None else ""
        text = f"Alignment filters (Algorithm 1), pass rates{scope}:\n\n"
        text += _table(("Filter", "Threshold", "Pass rate"), rows)
        text += "\n\n" + _calibration(curation.calibration)
        if curation.calibration.get("calibrated") and curation.calibration_maps:
            text += "\n\nWhat the calibration does to each score, by the cue the aligner read:\n\n" + _table(
                ("Cue", "Score", "Map", "Score in the shards"), _map_rows(curation.calibration_maps)
            )
        if curation.realigned is not None:
            text += (
                f"\n\nClips re-aligned by their estimated audio offset before the final decision: {curation.realigned}."
            )
        parts.append(text)

    if curation.model_licences:
        rows = [tuple(row.get(k, "") for k in LICENCE_COLUMNS) for row in curation.model_licences]
        parts.append(
            f"Models of the `{curation.profile}` profile and their licences (`pipeline.models` of each sample names "
            "the ones that ran on it):\n\n" + _table(("Role", "Model", "Package", "Licence", "Stated in"), rows)
        )

    config, version = curation.config, curation.acav1m_version
    shown = ", ".join(f"`{k}` = {config[k]}" for k in ("profile", "clip_seconds", "keep_flagged") if k in config)
    if config and (shown or version):
        by = f"acav1m {version}" if version else "acav1m"
        parts.append(f"Curated by {by}{' with ' + shown if shown else ''}; the full configuration is in `report.json`.")
    return "\n\n".join(parts)


MAP_EFFECT = {
    "calibrated": "P(own soundtrack); 0.5 is chance",
    "null": "null: {reason}",
    "uncalibrated": "the aligner's own scale (no map)",
}


def _map_rows(records: tuple[dict[str, Any], ...]) -> list[tuple[str, ...]]:
    """``calibration_maps`` as table rows. A null cue is the aligner-wide map's: every clip's, or, beside maps per
    cue, a clip's whose cue has none of its own."""
    per_cue = any(row.get("cue") for row in records)
    rows = []
    for row in records:
        cue = f"`{row['cue']}`" if row.get("cue") else "a cue without maps of its own" if per_cue else "every clip"
        effect = MAP_EFFECT[row["state"]].format(reason=row.get("reason") or "uninformative")
        rows.append((cue, row["score"], str(row.get("map") or ""), effect))
    return rows


def _calibration(state: dict[str, Any]) -> str:
    """What a score of 0.5 means in this release: chance (calibrated) or only the aligner's own scale."""
    aligner = f"`{state['aligner']}`" if state.get("aligner") else "the aligner"
    if state.get("calibrated"):
        return (
            f"Instance and temporal scores are calibrated: {aligner}'s raw values mapped to the probability that the "
            f"soundtrack is the clip's own (`{state.get('file')}`, fitted {state.get('fitted')} on in-sync and "
            "swapped clips; an aligner that reads different cues on different clips, such as the lips or the "
            "motion, has maps per cue), so 0.5 is chance; a score the fit found uninformative is null, with its "
            "reason; the raw values are in `alignment.*.raw`."
        )
    if not state:
        return "The report does not say whether the scores are calibrated."
    return (
        f"Scores are **uncalibrated**: {aligner}'s own normalisation, in which 0.5 is not chance between a clip's "
        "own soundtrack and another's; `docs/alignment.md` gives the command that fits a calibration."
    )


def _datasheet() -> str:
    parts = [
        "## Datasheet",
        "The datasheet published with ACAV-1M (following Datasheets for Datasets [1]), every question with the "
        "source's answer as written. Where the source gives no answer, the card says so. Lines marked *Note* are "
        "remarks of this project, not the source's.",
    ]
    for section in datasheet.SECTIONS:
        lines = [f"### {section.title}"]
        for entry in section.entries:
            lines.append(f"**{entry.question}**\n\n{entry.answer}")
            if entry.note:
                lines.append(f"*Note:* {entry.note}")
        parts.append("\n\n".join(lines))
    parts.append(f"### Algorithm\n\n{datasheet.ALGORITHM}")
    parts.append(f"### Author statement\n\n{datasheet.AUTHOR_STATEMENT}")
    parts.append(f"### Hosting, licensing and maintenance\n\n{datasheet.HOSTING}")
    parts.append("### References\n\n" + "\n".join(f"- {k} {v}" for k, v in datasheet.REFERENCES.items()))
    return "\n\n".join(parts)


def _license_and_citation() -> str:
    return f"""## License

{datasheet.LICENSE_NAME}: {datasheet.LICENSE_URL}. Each clip also records the license of its source video in
`source.license`.

## Citation

```bibtex
{datasheet.CITATION}
```"""


def render(facts: ReleaseFacts) -> str:
    """The full ``README.md`` text of the release that ``facts`` describe (YAML header, then the body)."""
    import yaml

    header = yaml.safe_dump(metadata(facts), sort_keys=False, allow_unicode=True, width=120)
    loading = f"## How to load\n\n{how_to_load()}"
    body = "\n\n".join([_overview(facts), loading, _release(facts), _schema(), _datasheet(), _license_and_citation()])
    return f"---\n{header}---\n\n{body}\n"


def write_card(root: str | Path) -> Path:
    """Write ``root/README.md`` (atomically) for the release folder ``root`` and return its path."""
    root = Path(root)
    path = root / CARD
    return write_atomic(path, render(ReleaseFacts.read(root, checksums=False)))

"""The dataset card (``README.md``) of a release folder.

The card is what makes the folder a Hub dataset repository: its YAML header
tells ``datasets`` which files form which split (``configs``) and what a sample
is (``dataset_info.features``, generated from `acav1m_hf.schema`, so that
``load_dataset`` never has to guess the features from five samples). Its body
documents the release (counts and pass rates from the curation report), the
schema (generated, so it cannot drift) and the full datasheet
(`acav1m_hf.datasheet`).

The card depends only on the folder and the report, so curation, the CLI and
tests produce the same text for the same release. Only a small markdown subset
is used (headings, paragraphs, lists, tables, fenced code), which both the Hub
and ``acav1m site`` render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acav1m_hf import datasheet
from acav1m_hf.release import CARD, CROISSANT, DATA_DIR, index_name, list_shards, write_atomic
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

FILTERS = ("language", "instance", "temporal")


def size_category(n: int) -> str:
    """The Hub ``size_categories`` value for ``n`` examples."""
    for bound, label in SIZE_CATEGORIES:
        if n < bound:
            return label
    return "n>1T"


def _index_rows(root: Path, split: str) -> int | None:
    import pyarrow.parquet as pq

    path = root / index_name(split)
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else None


def _split_stats(root: Path, report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Clips, seconds, shards and bytes per split that has shards.

    Clips come from the Parquet index (the folder is the truth the YAML must
    match), falling back to the report; seconds from the report's ``splits``;
    shards and bytes from the folder.
    """
    reported = report.get("splits") if isinstance(report.get("splits"), dict) else {}
    stats: dict[str, dict[str, Any]] = {}
    for split, paths in list_shards(root).items():
        entry = reported.get(split) if isinstance(reported.get(split), dict) else {}
        clips = _index_rows(root, split)
        if clips is None and isinstance(entry.get("clips"), int):
            clips = entry["clips"]
        seconds = entry.get("seconds")
        stats[split] = {
            "clips": clips,
            "seconds": float(seconds) if isinstance(seconds, (int, float)) else None,
            "shards": len(paths),
            "bytes": sum(p.stat().st_size for p in paths),
        }
    return stats


# --------------------------------------------------------------------------- YAML


def card_metadata(root: Path, report: dict[str, Any]) -> dict[str, Any]:
    """The YAML header as a dict: license, tasks, configs (data_files per split) and dataset_info."""
    from datasets import DatasetInfo

    from acav1m_hf.schema import hf_features

    root = Path(root)
    stats = _split_stats(root, report)
    total = sum(s["clips"] or 0 for s in stats.values())
    features = DatasetInfo(features=hf_features())._to_yaml_dict()["features"]
    info: dict[str, Any] = {"config_name": "default", "features": features}
    # num_bytes is the Arrow size of a split; media stay encoded bytes in Arrow, so the shards' size is a close,
    # honest stand-in. datasets needs the key to accept `splits`, and then checks num_examples on every load.
    splits = [
        {"name": s, "num_bytes": v["bytes"], "num_examples": v["clips"]}
        for s, v in stats.items()
        if v["clips"] is not None
    ]
    if len(splits) == len(stats):
        info["splits"] = splits
        info["dataset_size"] = sum(s["bytes"] for s in stats.values())
    info["download_size"] = sum(s["bytes"] for s in stats.values())
    return {
        "license": datasheet.LICENSE_ID,
        "pretty_name": datasheet.NAME,
        "task_categories": list(TASK_CATEGORIES),
        "tags": list(TAGS),
        "size_categories": [size_category(total)],
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


def _pct(value: Any) -> str:
    return f"{100 * value:.1f} %" if isinstance(value, (int, float)) else "not computed"


def _hours(seconds: float | None) -> str:
    return f"{seconds / 3600:.3f}" if seconds is not None else "unknown"


def _overview(stats: dict[str, dict[str, Any]]) -> str:
    total = sum(s["clips"] or 0 for s in stats.values())
    seconds = [s["seconds"] for s in stats.values()]
    hours = _hours(sum(seconds)) if all(x is not None for x in seconds) else "unknown"
    summary = "\n".join(f"- **{e.question}.** {e.answer}" for e in datasheet.SUMMARY.entries)
    return f"""# {datasheet.NAME}

{datasheet.DESCRIPTION}

This folder is one release in the ACAV-1M format, curated by the acav1m reference software: {total} clips
({hours} hours) in WebDataset shards (`data/{{split}}-{{n:05d}}.tar`), a Parquet index per split
(`metadata/{{split}}.parquet`), this card, and a Croissant description (`{CROISSANT}`). The counts below are
this release's own; the datasheet further down is the one published with ACAV-1M and describes the full dataset.

Website: {datasheet.WEBSITE}

{summary}"""


def _loading() -> str:
    return """## How to load

With `datasets` (4.0 or later decodes `mp4` and `flac` with torchcodec):

```python
from datasets import load_dataset

ds = load_dataset("acav1m")                  # run from the folder's parent; a local folder wins over the Hub
ds = load_dataset("/path/to/acav1m")         # from anywhere
sample = ds["train"][0]
sample["json"]["caption"]["text"], sample["json"]["alignment"]["instance"]["score"]
audio = sample["flac"]["array"]              # float32, 16 kHz mono
video = sample["mp4"]                        # torchcodec VideoDecoder

stream = load_dataset("/path/to/acav1m", split="train", streaming=True)
for sample in stream:
    ...
```

With this project's package, task views and a PyTorch pipeline over the shards:

```python
import acav1m_hf
from torch.utils.data import DataLoader

ds = acav1m_hf.load("/path/to/acav1m", split="train", task="localization")  # also: classification,
# segmentation, retrieval, sync; clips that lack the task's labels are skipped

train = acav1m_hf.stream("/path/to/acav1m", split="train", shuffle=1000)  # webdataset IterableDataset,
loader = DataLoader(train, batch_size=8, num_workers=2, collate_fn=acav1m_hf.collate)  # split by node and worker
```

The metadata of every clip is also in `metadata/{split}.parquet` (one row per clip, dotted column names such as
`alignment.instance.score`), so filtering never needs to open a tar. `croissant.json` describes the same files
for `mlcroissant` (`mlcroissant.Dataset("croissant.json").records("clips")`)."""


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


def _ordered(mapping: dict[str, Any]) -> list[tuple[str, Any]]:
    """Inputs, then clips, then any other key sorted: the same order whether the report was read back or not."""
    first = [k for k in ("inputs", "clips") if k in mapping]
    return [(k, mapping[k]) for k in first + sorted(k for k in mapping if k not in first)]


def _release(stats: dict[str, dict[str, Any]], report: dict[str, Any]) -> str:
    parts = ["## This release"]
    rows = [
        (
            s,
            v["clips"] if v["clips"] is not None else "unknown",
            _hours(v["seconds"]),
            v["shards"],
            f"{v['bytes'] / 1e6:.2f}",
        )
        for s, v in stats.items()
    ]
    parts.append(_table(("Split", "Clips", "Hours", "Shards", "Size (MB)"), rows))
    missing = [s for s in SPLITS if s not in stats]
    if missing:
        parts.append(f"Splits without clips in this release: {', '.join(missing)}.")

    counts = report.get("counts")
    if isinstance(counts, dict):
        rows = [
            (what, *(value.get(k, "") for k in ("total", "kept", "rejected")))
            for what, value in _ordered(counts)
            if isinstance(value, dict)
        ]
        if rows:
            parts.append("Curation outcomes:\n\n" + _table(("", "Total", "Kept", "Rejected"), rows))
    reasons = report.get("reasons")
    if isinstance(reasons, dict):
        rows = [
            (what, reason, n)
            for what, by_reason in _ordered(reasons)
            if isinstance(by_reason, dict)
            for reason, n in sorted(by_reason.items())
        ]
        if rows:
            parts.append("Rejection reasons:\n\n" + _table(("Of", "Reason", "Count"), rows))

    rates = report.get("pass_rates")
    if isinstance(rates, dict):
        config = report.get("config") if isinstance(report.get("config"), dict) else {}
        rows = [(name, config.get(f"{name}_threshold", ""), _pct(rates.get(name))) for name in FILTERS]
        analysed = report.get("analysed_clips")
        scope = f" over the {analysed} clips that reached the filters" if isinstance(analysed, int) else ""
        text = f"Alignment filters (Algorithm 1), pass rates{scope}:\n\n"
        text += _table(("Filter", "Threshold", "Pass rate"), rows)
        if isinstance(report.get("realigned"), int):
            text += f"\n\nClips re-aligned by their estimated audio offset before the final decision: {report['realigned']}."
        parts.append(text)

    config = report.get("config")
    if isinstance(config, dict):
        shown = ", ".join(f"`{k}` = {config[k]}" for k in ("profile", "clip_seconds", "keep_flagged") if k in config)
        version = report.get("acav1m_version")
        if shown or version:
            by = f"acav1m {version}" if version else "acav1m"
            parts.append(
                f"Curated by {by}{' with ' + shown if shown else ''}; the full configuration is in `report.json`."
            )
    return "\n\n".join(parts)


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


def render_card(root: Path, report: dict[str, Any]) -> str:
    """The full ``README.md`` text of the release at ``root``.

    Report keys read, each optional: ``splits`` (``{split: {seconds}}``, and
    ``clips`` when the index is missing), ``counts`` (``{inputs|clips: {total,
    kept, rejected}}``), ``reasons`` (``{inputs|clips: {reason: n}}``),
    ``pass_rates`` (``{language|instance|temporal: fraction or null}``),
    ``analysed_clips``, ``realigned``, ``config`` (thresholds, ``profile``,
    ``clip_seconds``, ``keep_flagged``) and ``acav1m_version``.
    """
    import yaml

    root = Path(root)
    report = report if isinstance(report, dict) else {}
    stats = _split_stats(root, report)
    header = yaml.safe_dump(card_metadata(root, report), sort_keys=False, allow_unicode=True, width=120)
    body = "\n\n".join(
        [_overview(stats), _loading(), _release(stats, report), _schema(), _datasheet(), _license_and_citation()]
    )
    return f"---\n{header}---\n\n{body}\n"


def write_card(root: Path, report: dict[str, Any]) -> Path:
    """Write ``root/README.md`` (atomically) and return its path."""
    root = Path(root)
    path = root / CARD
    return write_atomic(path, render_card(root, report))

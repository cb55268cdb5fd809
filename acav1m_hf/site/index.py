"""The chunked index: the release's Parquet index turned into the data files the clip browser loads.

At 1M clips the index is a few hundred MB, too much for a page. The browser loads the small manifest, then only
the chunks a query can match: per-chunk facets (split, label, pass/flag, score ranges) and the term files (which
chunks hold a word) let it skip the rest, and it stops scanning as soon as a page of results is full.

Why JavaScript files rather than JSON: browsers refuse ``fetch`` of local files from a ``file://`` page, but
a script element's ``src`` works everywhere, so every data file is ``ACAV.chunk(id, {...});`` and is loaded by inserting a
script tag. The same pass gathers what the pages need (totals, histograms, label counts), so the index is read once.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acav1m_hf import strict_json
from acav1m_hf.release import index_name
from acav1m_hf.schema import SPLITS
from acav1m_hf.site.links import Links
from acav1m_hf.site.media import choose_media, extract_media, media_bits

DEFAULT_CHUNK_ROWS = 5_000
SCORES = ("language", "instance", "temporal")
HIST_BINS = 20
TERM_PATTERN = re.compile(r"[a-z0-9]+")
"""Search terms of the chunk index. browse.js matches a query word as a prefix of a caption word
(Unicode letters and digits); an ASCII query word that prefixes a caption word always prefixes
one of these ASCII runs, so the term index never hides a match (non-ASCII query words skip it)."""

COLUMNS = (
    "key",
    "shard",
    "split",
    "caption.text",
    "caption.reason",
    "source.video_id",
    "source.path",
    "source.start",
    "source.end",
    "clip.duration",
    "clip.width",
    "clip.height",
    *(f"alignment.{s}.{part}" for s in SCORES for part in ("score", "threshold", "passed", "reason")),
    "alignment.sync.offset",
    "alignment.flags",
    "alignment.passed",
    "labels.category.label",
    "labels.category.score",
    "labels.localization.box",
    "labels.localization.peak",
    "labels.localization.reason",
    "labels.mask.present",
)
"""The index columns the site reads; a column a release lacks reads as nulls."""


@dataclass
class Histogram:
    """One alignment score over the whole release: ``HIST_BINS`` bins, nulls and their reasons, thresholds seen."""

    counts: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    nulls: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    thresholds: Counter[float] = field(default_factory=Counter)
    total: float = 0.0
    n: int = 0
    passed: int = 0
    fine: list[int] = field(default_factory=lambda: [0] * 1001)
    """Counts per 0.001 step (the precision the browser shows): the median without keeping every value."""

    @property
    def median(self) -> float | None:
        seen = 0
        for i, count in enumerate(self.fine):
            seen += count
            if count and seen * 2 >= self.n:
                return i / 1000
        return None

    @property
    def threshold(self) -> float | None:
        return self.thresholds.most_common(1)[0][0] if self.thresholds else None


@dataclass
class Index:
    """What the pages and the manifest need from the index, gathered while the chunk files are written."""

    rows: int = 0
    chunks: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    terms: dict[str, list[int]] = field(default_factory=dict)
    split_rows: Counter[str] = field(default_factory=Counter)
    split_seconds: Counter[str] = field(default_factory=Counter)
    histograms: dict[str, Histogram] = field(default_factory=lambda: {s: Histogram() for s in SCORES})
    label_counts: Counter[str] = field(default_factory=Counter)
    media: int = 0

    def vocab(self, table: dict[str, int], value: str | None) -> int:
        """The id of ``value`` in ``table`` (added if new), -1 for None: chunks store ids, the manifest the names."""
        if value is None:
            return -1
        if value not in table:
            table[value] = len(table)
        return table[value]

    def manifest(self, links: Links) -> dict[str, Any]:
        """The browser's entry point (``data/manifest.js``): totals, vocabularies, chunk facets, term files."""
        shards = list(self.shards)
        return {
            "version": 1,
            "rows": self.rows,
            "splits": list(SPLITS),
            "scores": list(SCORES),
            "thresholds": {s: self.histograms[s].threshold for s in SCORES},
            "labels": list(self.labels),
            "labelCounts": [self.label_counts[name] for name in self.labels],
            "flags": list(self.flags),
            "shards": shards,
            "shardHrefs": [links.shard(s) for s in shards],
            "chunks": self.chunks,
            "termFiles": sorted({_term_file(t) for t in self.terms}),
            "media": self.media,
        }


def build_index(root: Path, out: Path, chunk_rows: int, max_media: int) -> Index:
    """Write the chunk files and gather everything else the pages need, one split table at a time."""
    import pyarrow.parquet as pq

    index = Index()
    tables = {}
    for split in SPLITS:
        path = root / index_name(split)
        if path.is_file():
            present = set(pq.read_schema(path).names)
            tables[split] = (path, [c for c in COLUMNS if c in present])
    media_keys = choose_media(root, tables, max_media)
    extracted = extract_media(root, out, media_keys)
    index.media = len(extracted)
    for split, (path, columns) in tables.items():
        table = pq.read_table(path, columns=columns)
        for start in range(0, table.num_rows, chunk_rows):
            part = table.slice(start, chunk_rows)
            rows = {name: _pylist(part, name) for name in COLUMNS}
            _add_chunk(index, out, split, part.num_rows, rows, extracted)
    return index


def _pylist(table: Any, name: str) -> list[Any]:
    if name not in table.column_names:
        return [None] * table.num_rows
    return table.column(name).to_pylist()


def _num(value: Any, digits: int) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), digits)


def _nums(values: Iterable[Any] | None, digits: int, length: int) -> list[float] | None:
    if values is None:
        return None
    out = [_num(v, digits) for v in values]
    return out if len(out) == length and None not in out else None


def _add_chunk(
    index: Index,
    out: Path,
    split: str,
    n: int,
    rows: dict[str, list[Any]],
    extracted: Mapping[str, set[str]],
) -> None:
    chunk_id = len(index.chunks)
    keys = [str(k) for k in rows["key"]]
    captions = rows["caption.text"]
    durations = [_num(d, 2) for d in rows["clip.duration"]]
    scores = {s: [_num(v, 3) for v in rows[f"alignment.{s}.score"]] for s in SCORES}
    flags = [sum(1 << index.vocab(index.flags, f) for f in dict.fromkeys(fl or [])) for fl in rows["alignment.flags"]]
    labels = [index.vocab(index.labels, lab) for lab in rows["labels.category.label"]]
    shards = [index.vocab(index.shards, s) for s in rows["shard"]]
    media = [media_bits(extracted.get(k, set())) for k in keys]
    reasons: dict[str, str] = {}
    for i in range(n):
        parts = [f"caption: {rows['caption.reason'][i]}"] if rows["caption.reason"][i] else []
        parts += [f"{s}: {rows[f'alignment.{s}.reason'][i]}" for s in SCORES if rows[f"alignment.{s}.reason"][i]]
        if rows["labels.localization.reason"][i]:
            parts.append(f"localization: {rows['labels.localization.reason'][i]}")
        if parts:
            reasons[str(i)] = "; ".join(parts)
    data = {
        "n": n,
        "split": SPLITS.index(split),
        "key": keys,
        "caption": captions,
        "label": labels,
        "labelScore": [_num(v, 3) for v in rows["labels.category.score"]],
        **scores,
        "sync": [_num(v, 3) for v in rows["alignment.sync.offset"]],
        "passed": [1 if p else 0 for p in rows["alignment.passed"]],
        "flags": flags,
        "box": [_nums(b, 4, 4) for b in rows["labels.localization.box"]],
        "peak": [_nums(p, 4, 2) for p in rows["labels.localization.peak"]],
        "mask": [1 if m else 0 for m in rows["labels.mask.present"]],
        "media": media,
        "duration": durations,
        "start": [_num(v, 2) for v in rows["source.start"]],
        "videoId": rows["source.video_id"],
        "path": rows["source.path"],
        "shard": shards,
        "width": rows["clip.width"],
        "height": rows["clip.height"],
        "reasons": reasons,
    }
    write_js(out / "data" / "chunks" / f"{chunk_id:05d}.js", "ACAV.chunk", chunk_id, data)

    # facets: what a query needs to know to skip this chunk without loading it
    label_counts = Counter(labels)
    flag_counts = Counter(bit for f in flags for bit in range(f.bit_length()) if f >> bit & 1)
    ranges = {}
    for s in SCORES:
        present = [v for v in scores[s] if v is not None]
        ranges[s] = [min(present), max(present)] if present else None
    index.chunks.append(
        {
            "n": n,
            "split": SPLITS.index(split),
            "labels": {str(k): v for k, v in sorted(label_counts.items())},
            "passed": sum(data["passed"]),
            "flags": {str(k): v for k, v in sorted(flag_counts.items())},
            "media": sum(1 for m in media if m & 1),
            "ranges": ranges,
        }
    )

    # terms: which chunks contain a word (see TERM_PATTERN)
    text = " ".join(c for c in captions if c).lower()
    for term in set(TERM_PATTERN.findall(text)):
        index.terms.setdefault(term, []).append(chunk_id)

    # totals and histograms
    index.rows += n
    index.split_rows[split] += n
    index.split_seconds[split] += sum(d for d in durations if d is not None)
    for lab in rows["labels.category.label"]:
        if lab is not None:
            index.label_counts[lab] += 1
    for s in SCORES:
        hist = index.histograms[s]
        for i, value in enumerate(scores[s]):
            threshold = _num(rows[f"alignment.{s}.threshold"][i], 4)
            if threshold is not None:
                hist.thresholds[threshold] += 1
            if value is None:
                hist.nulls += 1
                hist.reasons[rows[f"alignment.{s}.reason"][i] or "no reason given"] += 1
                continue
            millis = min(max(round(value * 1000), 0), 1000)  # integers: a score on a bin edge lands in the upper bin
            hist.counts[min(millis * HIST_BINS // 1000, HIST_BINS - 1)] += 1
            hist.fine[millis] += 1
            hist.total += value
            hist.n += 1
            hist.passed += rows[f"alignment.{s}.passed"][i] is True


def _term_file(term: str) -> str:
    return term[:2]


def write_terms(out: Path, terms: Mapping[str, list[int]]) -> None:
    """One ``data/terms/PP.js`` per two-letter prefix: term -> ids of the chunks whose captions hold it."""
    groups: dict[str, dict[str, list[int]]] = {}
    for term in sorted(terms):
        groups.setdefault(_term_file(term), {})[term] = terms[term]
    for prefix, group in groups.items():
        write_js(out / "data" / "terms" / f"{prefix}.js", "ACAV.terms", prefix, group)


def write_js(path: Path, call: str, *args: Any) -> None:
    """Write ``call(arg, ...);`` with JSON arguments; JSON is a JS expression, strings cannot escape it."""
    text = f"{call}({','.join(_json(a) for a in args)});\n"
    path.write_text(text, encoding="utf-8")


def _json(value: Any) -> str:
    return strict_json.dumps(value, ensure_ascii=False, separators=(",", ":"))

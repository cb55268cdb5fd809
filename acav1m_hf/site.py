"""The static dataset website: overview, clip browser and score distributions.

`build_site` turns a release folder (see `acav1m_hf.release`) into a folder of
plain HTML, CSS and JavaScript that works from ``file://`` and from any static
host (GitHub Pages, the Hub): there is no server code and no build step.

::

    SITE/
      index.html              overview: card, counts and hours per split, pass rates, how to load, links
      browse.html             clip browser: search, filters, playback with box and mask overlays
      distributions.html      one histogram per alignment score, threshold marked (inline SVG)
      croissant.json          copy of the release's Croissant record, so the link works anywhere
      assets/                 style.css, browse.js (copied from acav1m_hf/site_assets)
      data/manifest.js        totals, vocabularies, per-chunk facets, term-file list
      data/chunks/NNNNN.js    compact columnar index, ``chunk_rows`` rows per file, one split per file
      data/terms/PP.js        search terms starting with PP -> chunks that contain them
      media/KEY.mp4 ...       mp4, mask.png and jpg of at most ``max_media`` clips

Why JavaScript files rather than JSON: browsers refuse ``fetch`` of local files
from a ``file://`` page, but ``<script src>`` works everywhere, so every data
file is ``ACAV.chunk(id, {...});`` and is loaded by inserting a script tag.

Why chunks and term files: at 1M clips the index is a few hundred MB, too much
for a page. The browser loads the small manifest, then only the chunks a query
can match: per-chunk facets (split, label, pass/flag, score ranges) and the
term files (which chunks hold a word) let it skip the rest, and it stops
scanning as soon as a page of results is full.

Every string that comes from the data is HTML-escaped here (overview,
distributions) or inserted with ``textContent`` by ``browse.js``; nothing from
the data is ever parsed as markup.
"""

from __future__ import annotations

import html
import http.server
import json
import math
import os
import re
import shutil
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from acav1m_hf import strict_json
from acav1m_hf.release import CARD, CROISSANT, REPORT, SHARD_PATTERN, index_name, list_shards
from acav1m_hf.schema import KEY_PATTERN, SPLITS, check_member
from acav1m_hf.validate import open_shard

DEFAULT_CHUNK_ROWS = 5_000
DEFAULT_MAX_MEDIA = 200
SCORES = ("language", "instance", "temporal")
HIST_BINS = 20
MARKER = ".acav1m-site"
"""Written into every site folder, so a rebuild only ever deletes a folder it made itself."""
ASSETS = Path(__file__).with_name("site_assets")
MEDIA_MEMBERS = ("mp4", "mask.png", "jpg")
TERM_PATTERN = re.compile(r"[a-z0-9]+")
"""Search terms of the chunk index. browse.js matches a query word as a prefix of a caption word
(Unicode letters and digits); an ASCII query word that prefixes a caption word always prefixes
one of these ASCII runs, so the term index never hides a match (non-ASCII query words skip it)."""
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"

_COLUMNS = (
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


# --------------------------------------------------------------------------- public API


def build_site(
    root: Path,
    out: Path,
    *,
    max_media: int = DEFAULT_MAX_MEDIA,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    base_url: str | None = None,
    repo_id: str | None = None,
) -> Path:
    """Build the static site of the release at ``root`` into ``out`` and return ``out``.

    ``max_media`` clips (spread over the splits) get their mp4, mask and keyframe
    copied into ``out/media`` so they play from any static host; the others show
    metadata only, because copying a million clips into a website is not a website.
    Links to shards and index files point to ``base_url`` + their release path
    when given (e.g. the Hub's ``resolve/main/``), else to their path relative to
    ``out`` (works when the site lives inside or next to the release).
    ``repo_id`` (``org/name``) fills the ``load_dataset`` examples.

    The site is built in a hidden folder beside ``out`` and moved in when complete, replacing only what a build
    writes. A shard that cannot be read (truncated, empty, compressed, a refused member, a clip the index puts
    there but the shard lacks) raises `ValueError` naming the shard and the reason, and leaves ``out`` as it was.
    """
    root, out = Path(root), Path(out)
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    _check_out(out)
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # innermost first
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built beside ``out`` and moved in at the end: a shard that fails half-way leaves ``out`` as it was.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        _prepare_out(staging)
        card_meta, card_body = _read_card(root)
        report = _read_json(root / REPORT)
        links = _Links(root, out, base_url)

        index = _build_index(root, staging, chunk_rows, max_media)
        _write_terms(staging, index.terms)
        _write_js(staging / "data" / "manifest.js", "ACAV.manifest", index.manifest(links, report))

        if (root / CROISSANT).is_file():
            shutil.copyfile(root / CROISSANT, staging / CROISSANT)
        for name in ("style.css", "browse.js"):
            shutil.copyfile(ASSETS / name, staging / "assets" / name)

        context = _Context(root, card_meta, card_body, report, index, links, repo_id)
        (staging / "index.html").write_text(_render_overview(context), encoding="utf-8")
        (staging / "browse.html").write_text(_render_browse(context), encoding="utf-8")
        (staging / "distributions.html").write_text(_render_distributions(context), encoding="utf-8")
        _install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # only the folders this run created, empty again
            folder.rmdir()
        raise
    staging.rmdir()
    return out


def make_server(site_dir: Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``site_dir`` bound to 127.0.0.1 only (port 0: any free port).

    It answers byte-range requests, which browsers use to seek in videos and
    which Python's stock handler ignores.
    """
    handler = partial(_RangeHandler, directory=str(Path(site_dir).resolve()))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(site_dir: Path, port: int = 8000) -> None:
    """Serve ``site_dir`` on http://127.0.0.1:PORT/ until interrupted (local viewing only)."""
    with make_server(site_dir, port) as server:
        print(f"Serving {site_dir} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


# --------------------------------------------------------------------------- output folder


def _check_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise FileExistsError(f"{out} is not empty and was not made by `acav1m site`; refusing to overwrite it")


def _prepare_out(out: Path) -> None:
    for sub in ("assets", "data/chunks", "data/terms", "media"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("Built by `acav1m site`; the folder is replaced on rebuild.\n", encoding="utf-8")


def _install(staging: Path, out: Path) -> None:
    """Replace what an earlier build wrote in ``out`` with the finished build; anything else in ``out`` stays."""
    out.mkdir(exist_ok=True)
    for name in {"assets", "data", "media", CROISSANT, *(p.name for p in staging.iterdir())}:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if (staging / name).exists():
            os.replace(staging / name, target)


def _write_js(path: Path, call: str, *args: Any) -> int:
    """Write ``call(arg, ...);`` with JSON arguments; JSON is a JS expression, strings cannot escape it."""
    text = f"{call}({','.join(_json(a) for a in args)});\n"
    path.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


def _json(value: Any) -> str:
    return strict_json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- links


class _Links:
    """Hrefs to release files: ``base_url`` + path, or a path relative to the site folder."""

    def __init__(self, root: Path, out: Path, base_url: str | None) -> None:
        self.root, self.out = root, out
        self.base_url = base_url.rstrip("/") + "/" if base_url else None

    def href(self, release_path: str) -> str:
        if self.base_url:
            return self.base_url + release_path
        rel = os.path.relpath(self.root.resolve() / release_path, self.out.resolve())
        return Path(rel).as_posix()

    def shard(self, shard: str) -> str | None:
        """Href of a shard, or None when the index names something that is not a shard path."""
        parts = shard.split("/")
        if len(parts) != 2 or parts[0] != "data" or not SHARD_PATTERN.match(parts[1]):
            return None
        return self.href(shard)


# --------------------------------------------------------------------------- the index


@dataclass
class _Histogram:
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
class _Index:
    rows: int = 0
    chunks: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    terms: dict[str, list[int]] = field(default_factory=dict)
    split_rows: Counter[str] = field(default_factory=Counter)
    split_seconds: Counter[str] = field(default_factory=Counter)
    histograms: dict[str, _Histogram] = field(default_factory=lambda: {s: _Histogram() for s in SCORES})
    label_counts: Counter[str] = field(default_factory=Counter)
    media: int = 0
    chunk_bytes: int = 0
    size: tuple[int, int] | None = None

    def vocab(self, table: dict[str, int], value: str | None) -> int:
        if value is None:
            return -1
        if value not in table:
            table[value] = len(table)
        return table[value]

    def manifest(self, links: _Links, report: Mapping[str, Any]) -> dict[str, Any]:
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


def _build_index(root: Path, out: Path, chunk_rows: int, max_media: int) -> _Index:
    """Write the chunk files and gather everything else the pages need, one split table at a time."""
    import pyarrow.parquet as pq

    index = _Index()
    tables = {}
    for split in SPLITS:
        path = root / index_name(split)
        if path.is_file():
            present = set(pq.read_schema(path).names)
            tables[split] = (path, [c for c in _COLUMNS if c in present])
    media_keys = _choose_media(root, tables, max_media)
    extracted = _extract_media(root, out, media_keys)
    index.media = len(extracted)
    for split, (path, columns) in tables.items():
        table = pq.read_table(path, columns=columns)
        for start in range(0, table.num_rows, chunk_rows):
            part = table.slice(start, chunk_rows)
            rows = {name: _pylist(part, name) for name in _COLUMNS}
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
    index: _Index,
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
    flags = [sum(1 << index.vocab(index.flags, f) for f in set(fl or [])) for fl in rows["alignment.flags"]]
    labels = [index.vocab(index.labels, lab) for lab in rows["labels.category.label"]]
    shards = [index.vocab(index.shards, s) for s in rows["shard"]]
    media = [_media_bits(extracted.get(k, set())) for k in keys]
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
    index.chunk_bytes += _write_js(out / "data" / "chunks" / f"{chunk_id:05d}.js", "ACAV.chunk", chunk_id, data)

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
    if index.size is None:
        for w, h in zip(rows["clip.width"], rows["clip.height"], strict=True):
            if w and h:
                index.size = (int(w), int(h))
                break
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


def _media_bits(members: set[str]) -> int:
    """Bit 0: mp4, bit 1: mask.png, bit 2: jpg copied into media/."""
    return sum(1 << i for i, ext in enumerate(MEDIA_MEMBERS) if ext in members)


def _term_file(term: str) -> str:
    return term[:2]


def _write_terms(out: Path, terms: Mapping[str, list[int]]) -> None:
    groups: dict[str, dict[str, list[int]]] = {}
    for term in sorted(terms):
        groups.setdefault(_term_file(term), {})[term] = terms[term]
    for prefix, group in groups.items():
        _write_js(out / "data" / "terms" / f"{prefix}.js", "ACAV.terms", prefix, group)


# --------------------------------------------------------------------------- media


def _choose_media(root: Path, tables: Mapping[str, tuple[Path, list[str]]], max_media: int) -> dict[str, list[str]]:
    """Keys whose media go into the site, per shard: the first clips of each split, shared fairly.

    Spreading the budget over the splits means a split filter still shows playable clips.
    """
    import pyarrow.parquet as pq

    if max_media <= 0 or not tables:
        return {}
    per_split = {}
    for split, (path, _) in tables.items():
        table = pq.read_table(path, columns=["key", "shard"])
        if table.num_rows > max_media:
            table = table.slice(0, max_media)
        per_split[split] = list(zip(table.column("key").to_pylist(), table.column("shard").to_pylist(), strict=True))
    chosen: list[tuple[str, str]] = []
    position = dict.fromkeys(per_split, 0)
    while len(chosen) < max_media and any(position[s] < len(per_split[s]) for s in per_split):
        for split, rows in per_split.items():
            if position[split] < len(rows) and len(chosen) < max_media:
                chosen.append(rows[position[split]])
                position[split] += 1
    by_shard: dict[str, list[str]] = {}
    for key, shard in chosen:
        if KEY_PATTERN.match(key) and shard and (root / shard).is_file():
            by_shard.setdefault(shard, []).append(key)
    return by_shard


def _extract_media(root: Path, out: Path, by_shard: Mapping[str, list[str]]) -> dict[str, set[str]]:
    """Copy the chosen clips' media members from their shards; return key -> members copied."""
    copied: dict[str, set[str]] = {}
    for shard, keys in by_shard.items():
        try:
            _copy_media(root / shard, out / "media", set(keys), copied)
        except ValueError as exc:  # refused by open_shard or check_member, or a clip missing: the reason says which
            raise ValueError(f"{shard}: {exc}") from exc
        except (tarfile.TarError, EOFError) as exc:
            raise ValueError(f"{shard}: unreadable tar ({exc})") from exc
    return copied


def _copy_media(shard: Path, media: Path, wanted: set[str], copied: dict[str, set[str]]) -> None:
    with open_shard(shard, "r:") as tar:
        for member in tar:
            key, ext = check_member(member)
            if key not in wanted or ext not in MEDIA_MEMBERS:
                continue
            with tar.extractfile(member) as source, open(media / f"{key}.{ext}", "wb") as target:
                shutil.copyfileobj(source, target)
            copied.setdefault(key, set()).add(ext)
    missing = sorted(k for k in wanted if "mp4" not in copied.get(k, ()))
    if missing:  # tarfile ends quietly at a cut between two members
        raise ValueError(f"no mp4 for {missing[0]}, which the index puts in it (truncated, or not the indexed shard)")


# --------------------------------------------------------------------------- card and report


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_card(root: Path) -> tuple[dict[str, Any], str]:
    """YAML front matter and markdown body of the dataset card (both empty when there is none)."""
    try:
        text = (root / CARD).read_text(encoding="utf-8")
    except OSError:
        return {}, ""
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if not match:
        return {}, text
    try:
        import yaml

        meta = yaml.safe_load(match.group(1))
    except Exception:  # a malformed header must not stop the site: show the body anyway
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def _citation(body: str) -> str | None:
    """The first BibTeX block of the card, if it has one."""
    match = re.search(r"```(?:bibtex|bib)?\s*\n(\s*@\w+\s*\{.*?)```", body, re.S | re.I)
    return match.group(1).strip() if match else None


_E = html.escape


def _inline(text: str) -> str:
    """Inline markdown (code, bold, italics, links) on already-escaped text; only safe link schemes."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{part[1:-1]}</code>")
            continue
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part)
        part = _LINK.sub(_link, part)
        out.append(part)
    return "".join(out)


_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)|(https?://(?:(?!&quot;|&lt;|&gt;|&#x27;)[^\s<>\"])*[^\s<>\".,;:)&])")
"""``[label](url)`` or a bare http(s) URL, matched on escaped text (so entities end a bare URL)."""


def _link(match: re.Match[str]) -> str:
    if match.group(3):
        return f'<a href="{match.group(3)}">{match.group(3)}</a>'
    label, url = match.group(1), match.group(2)
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", html.unescape(url))
    if scheme and scheme.group(1).lower() not in ("http", "https", "mailto"):
        return label
    return f'<a href="{url}">{label}</a>'


def render_markdown(text: str, demote: int = 1) -> str:
    """A small, safe markdown subset to HTML: headings, paragraphs, lists, tables, code, links.

    Every character of ``text`` is escaped before any markup is added, so the
    card can say anything without becoming markup. Headings move down ``demote``
    levels to sit under the page's own title.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            lang = stripped[3:].strip()
            i += 1
            code = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            attr = f' class="lang-{_E(lang)}"' if lang else ""
            out.append(f"<pre><code{attr}>{_E(chr(10).join(code))}</code></pre>")
            i += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*$", stripped)
        if heading:
            level = min(len(heading.group(1)) + demote, 6)
            out.append(f"<h{level}>{_inline(_E(heading.group(2)))}</h{level}>")
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?[\s:|-]+\|?$", lines[i + 1].strip()):
            rows = [stripped]
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i].strip())
                i += 1
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{_inline(_E(c))}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{_inline(_E(c))}</td>" for c in r) + "</tr>" for r in cells[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            continue
        item = re.match(r"^\s*([-*+]|\d+[.)])\s+(.*)$", line)
        if item:
            ordered = item.group(1)[0].isdigit()
            items = []
            while i < len(lines):
                match = re.match(r"^\s*([-*+]|\d+[.)])\s+(.*)$", lines[i])
                if match:
                    items.append(match.group(2))
                elif lines[i].startswith(("  ", "\t")) and lines[i].strip() and items:
                    items[-1] += " " + lines[i].strip()
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(_E(t))}</li>" for t in items) + f"</{tag}>")
            continue
        if not stripped or stripped.startswith("<!--"):
            i += 1
            continue
        if re.match(r"^(-{3,}|\*{3,}|_{3,})$", stripped):
            out.append("<hr>")
            i += 1
            continue
        paragraph = []
        while i < len(lines):
            s = lines[i].strip()
            if not s or s.startswith(("```", "#", "|")) or re.match(r"^\s*([-*+]|\d+[.)])\s+", lines[i]):
                break
            paragraph.append(s[1:].strip() if s.startswith(">") else s)
            i += 1
        out.append(f"<p>{_inline(_E(' '.join(paragraph)))}</p>")
    return "\n".join(out)


# --------------------------------------------------------------------------- pages


@dataclass
class _Context:
    root: Path
    card_meta: dict[str, Any]
    card_body: str
    report: dict[str, Any]
    index: _Index
    links: _Links
    repo_id: str | None

    @property
    def title(self) -> str:
        name = self.card_meta.get("pretty_name")
        return str(name) if name else "ACAV-1M"


_NAV = (("index.html", "Overview"), ("browse.html", "Browse clips"), ("distributions.html", "Distributions"))


def _page(ctx: _Context, current: str, title: str, body: str, scripts: Sequence[str] = ()) -> str:
    nav = "".join(
        f'<a href="{href}"{" aria-current=page" if href == current else ""}>{label}</a>' for href, label in _NAV
    )
    tags = "".join(f'<script src="{s}"></script>' for s in scripts)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'">
<title>{_E(title)} · {_E(ctx.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/style.css">
</head>
<body>
<header class="top"><span class="brand">{_E(ctx.title)}</span><nav>{nav}</nav></header>
<main>
{body}
</main>
<footer>Built by <code>acav1m site</code> from the release's Parquet index. Data: CC BY 4.0.</footer>
{tags}
</body>
</html>
"""


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _fmt_hours(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:,.1f} h" if hours >= 10 else f"{hours:,.2f} h" if hours >= 0.1 else f"{seconds / 60:,.1f} min"


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) and not isinstance(value, bool) else "not computed"


def _size(path: Path) -> str:
    try:
        n = path.stat().st_size
    except OSError:
        return ""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _split_stats(ctx: _Context) -> dict[str, tuple[int, float]]:
    """Clips and seconds per split: the report's figures, else the index's."""
    splits = ctx.report.get("splits")
    stats = {}
    for split in SPLITS:
        entry = splits.get(split) if isinstance(splits, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("clips"), int):
            stats[split] = (entry["clips"], float(entry.get("seconds") or 0.0))
        elif ctx.index.split_rows[split]:
            stats[split] = (ctx.index.split_rows[split], ctx.index.split_seconds[split])
    return stats


def _flatten_counts(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows = []
        for k, v in value.items():
            rows += _flatten_counts(v, f"{prefix}{k}" if not prefix else f"{prefix} / {k}")
        return rows
    return [(prefix, value)]


def _render_overview(ctx: _Context) -> str:
    stats = _split_stats(ctx)
    total_clips = sum(c for c, _ in stats.values())
    total_seconds = sum(s for _, s in stats.values())
    shards = list_shards(ctx.root)
    tiles = [
        (_fmt_int(total_clips), "clips"),
        (_fmt_hours(total_seconds), "of audio-visual clips"),
        (_fmt_int(sum(len(v) for v in shards.values())), "WebDataset shards"),
        (_fmt_int(len(ctx.index.labels)), "class labels"),
    ]
    tile_html = "".join(f'<div class="tile"><b>{_E(v)}</b><span>{_E(t)}</span></div>' for v, t in tiles)

    split_rows = "".join(
        f"<tr><th>{_E(s)}</th><td>{_fmt_int(c)}</td><td>{_E(_fmt_hours(sec))}</td><td>{len(shards.get(s, []))}</td>"
        f'<td><a href="browse.html#split={_E(s)}">browse</a></td></tr>'
        for s, (c, sec) in stats.items()
    )
    rates = ctx.report.get("pass_rates") if isinstance(ctx.report.get("pass_rates"), dict) else {}
    rate_rows = ""
    for s in SCORES:
        hist = ctx.index.histograms[s]
        rate = rates.get(s) if rates else (hist.passed / hist.n if hist.n else None)
        threshold = hist.threshold
        rate_rows += (
            f"<tr><th>{_E(s)}</th><td>{_E(_pct(rate))}</td><td>{'' if threshold is None else f'{threshold:g}'}</td>"
            f"<td>{_fmt_int(hist.nulls)}</td></tr>"
        )
    counts = _flatten_counts(ctx.report.get("counts", {})) if ctx.report.get("counts") else []
    counts_html = ""
    if counts:
        counts_html = (
            "<details><summary>Curation counts (report.json)</summary><table class=kv>"
            + "".join(f"<tr><th>{_E(k)}</th><td>{_E(str(v))}</td></tr>" for k, v in counts)
            + "</table></details>"
        )

    repo = ctx.repo_id or "/path/to/acav1m"
    record_set = _croissant_record_set(ctx.root)
    load_code = _E(
        f"""from datasets import load_dataset

# the whole release, from a local folder or a Hub repository id ("org/name")
ds = load_dataset("{repo}", split="train")

# streaming: samples arrive shard by shard, nothing is downloaded up front
stream = load_dataset("{repo}", split="train", streaming=True)
for sample in stream.take(2):
    print(sample["__key__"], sample["json"]["caption"]["text"])

# metadata only: the Parquet index, one row per clip
import pandas as pd
index = pd.read_parquet("metadata/train.parquet")
print(index[index["alignment.passed"]]["caption.text"].head())"""
    )
    croissant_code = _E(
        f"""import mlcroissant as mlc

ds = mlc.Dataset("croissant.json")
for record in ds.records("{record_set}"):
    print(record)
    break"""
    )
    train_shards = len(shards.get("train", [])) or 1
    pattern = "data/train-00000.tar" if train_shards == 1 else f"data/train-{{00000..{train_shards - 1:05d}}}.tar"
    webdataset_code = _E(
        f"""import json
import webdataset as wds

for sample in wds.WebDataset("{pattern}", shardshuffle=False):
    mp4_bytes, meta = sample["mp4"], json.loads(sample["json"])"""
    )

    downloads = []
    if (ctx.root / CROISSANT).is_file():  # build_site copies it into the site
        downloads.append(('<a href="croissant.json">croissant.json</a>', "Croissant 1.0 JSON-LD (copy)", ""))
    for name in (CARD, REPORT):
        if (ctx.root / name).is_file():
            downloads.append(
                (f'<a href="{_E(ctx.links.href(name))}">{_E(name)}</a>', "in the release", _size(ctx.root / name))
            )
    for split in SPLITS:
        path = ctx.root / index_name(split)
        if path.is_file():
            downloads.append(
                (
                    f'<a href="{_E(ctx.links.href(index_name(split)))}">{_E(index_name(split))}</a>',
                    "Parquet index",
                    _size(path),
                )
            )
    shard_items = []
    for paths in shards.values():
        for path in paths:
            rel = f"data/{path.name}"
            shard_items.append(
                f'<li><a href="{_E(ctx.links.href(rel))}">{_E(rel)}</a> <small>{_E(_size(path))}</small></li>'
            )
    download_rows = "".join(f"<tr><td>{a}</td><td>{_E(d)}</td><td>{_E(s)}</td></tr>" for a, d, s in downloads)
    shards_html = (
        f"<details><summary>{len(shard_items)} shards</summary><ul class=shards>{''.join(shard_items)}</ul></details>"
        if shard_items
        else "<p>No shards in this release.</p>"
    )

    license_id = str(ctx.card_meta.get("license") or "cc-by-4.0")
    citation = _citation(ctx.card_body) or (
        "@misc{acav1m,\n"
        f"  title = {{{ctx.title}: a curated audio-visual dataset}},\n"
        "  note = {Curated release built with the acav1m pipeline; see the dataset card},\n"
        "  howpublished = {\\url{https://acav1m.github.io}}\n"
        "}"
    )
    card_html = render_markdown(ctx.card_body) if ctx.card_body.strip() else "<p>The release has no README.md.</p>"
    body = f"""
<section class="hero">
<h1>{_E(ctx.title)}</h1>
<p class="lead">Audio-visual clips with comprehensive captions, three alignment scores, class labels,
sound-source boxes and masks. <a href="browse.html">Browse the clips</a> or
<a href="distributions.html">see the score distributions</a>.</p>
<div class="tiles">{tile_html}</div>
</section>

<section class="grid2">
<div>
<h2>Splits</h2>
<table class="num"><thead><tr><th>split</th><th>clips</th><th>duration</th><th>shards</th><th></th></tr></thead>
<tbody>{split_rows}</tbody></table>
</div>
<div>
<h2>Filter pass rates</h2>
<table class="num"><thead><tr><th>filter</th><th>pass rate</th><th>threshold</th><th>null scores</th></tr></thead>
<tbody>{rate_rows}</tbody></table>
<p class="note">Rates from <code>report.json</code> where it gives them. A clip passes when every filter passes; flagged clips stay in the release with <code>alignment.flags</code> set.</p>
{counts_html}
</div>
</section>

<section>
<h2>How to load</h2>
<h3>Hugging Face <code>datasets</code>, streaming and the Parquet index</h3>
<pre><code>{load_code}</code></pre>
<h3>Croissant</h3>
<pre><code>{croissant_code}</code></pre>
<h3>WebDataset</h3>
<pre><code>{webdataset_code}</code></pre>
</section>

<section class="grid2">
<div>
<h2>Downloads</h2>
<table><tbody>{download_rows}</tbody></table>
{shards_html}
</div>
<div>
<h2>License</h2>
<p>The dataset is released under the <a href="{LICENSE_URL}">Creative Commons Attribution 4.0 International license (CC BY 4.0)</a>
(<code>{_E(license_id)}</code>): share and adapt it with appropriate credit. Source videos keep their own licenses, recorded per clip in <code>source.license</code>.</p>
<h2>Citation</h2>
<pre class="citation"><code>{_E(citation)}</code></pre>
</div>
</section>

<section class="card">
<h2>Dataset card</h2>
{card_html}
</section>
"""
    return _page(ctx, "index.html", "Overview", body)


def _croissant_record_set(root: Path) -> str:
    data = _read_json(root / CROISSANT)
    for record_set in data.get("recordSet", []) if isinstance(data.get("recordSet"), list) else []:
        if isinstance(record_set, dict) and isinstance(record_set.get("@id") or record_set.get("name"), str):
            return str(record_set.get("@id") or record_set.get("name"))
    return "clips"


def _render_browse(ctx: _Context) -> str:
    score_inputs = "".join(
        f"""<fieldset class="range"><legend>{_E(s)} score</legend>
<label>min <input type="number" id="min-{s}" min="0" max="1" step="0.05" value="0" inputmode="decimal"></label>
<label>max <input type="number" id="max-{s}" min="0" max="1" step="0.05" value="1" inputmode="decimal"></label>
</fieldset>"""
        for s in SCORES
    )
    body = f"""
<div class="browser">
<form id="filters" class="filters" autocomplete="off">
<label class="search">Search captions <input type="search" id="q" placeholder="e.g. dog barking" spellcheck="false"></label>
<label>Split <select id="split"><option value="">all splits</option></select></label>
<label>Class label <select id="label"><option value="">all labels</option></select></label>
<label>Pass / flag <select id="status"><option value="">all clips</option><option value="passed">passed every filter</option><option value="flagged">flagged by any filter</option></select></label>
{score_inputs}
<label class="check"><input type="checkbox" id="with-media"> only clips with video in this site</label>
<fieldset class="overlays"><legend>Overlays</legend>
<label class="check"><input type="checkbox" id="show-box" checked> box and peak</label>
<label class="check"><input type="checkbox" id="show-mask" checked> mask</label>
</fieldset>
<button type="reset" id="reset">Reset filters</button>
<p class="note">Search matches words that start with each query word. Scores are in [0, 1]; a narrowed range drops clips whose score is null.</p>
</form>
<section class="results" aria-label="Clips">
<p id="status-line" class="status" role="status" aria-live="polite">Loading the index…</p>
<div id="cards" class="cards"></div>
<button type="button" id="more" hidden>Show more</button>
<noscript><p>The clip browser needs JavaScript. The overview and distributions pages do not.</p></noscript>
</section>
</div>
<svg width="0" height="0" class="defs" aria-hidden="true"><filter id="mask-tint" color-interpolation-filters="sRGB"><feColorMatrix type="matrix" values="0 0 0 0 1  0 0 0 0 0.25  0 0 0 0 0.55  0.45 0 0 0 0"/></filter></svg>
"""
    return _page(ctx, "browse.html", "Browse clips", body, ["assets/browse.js", "data/manifest.js"])


def _svg_histogram(hist: _Histogram, name: str) -> str:
    width, height, left, bottom, top = 560, 220, 48, 28, 12
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = max(hist.counts) or 1
    bar_w = plot_w / HIST_BINS
    threshold = hist.threshold
    bars = []
    for b, count in enumerate(hist.counts):
        lo, hi = b / HIST_BINS, (b + 1) / HIST_BINS
        h = plot_h * count / peak
        x, y = left + b * bar_w, top + plot_h - h
        cls = (
            "pass"
            if threshold is not None and lo >= threshold
            else "flag"
            if threshold is not None and hi <= threshold
            else "mixed"
        )
        bars.append(
            f'<rect class="bar {cls}" x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}">'
            f"<title>{lo:.2f}–{hi:.2f}: {count:,} clips</title></rect>"
        )
    ticks = []
    for t in range(0, 11, 2):
        x = left + plot_w * t / 10
        ticks.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}"/>')
        ticks.append(f'<text class="axis" x="{x:.1f}" y="{height - 8}" text-anchor="middle">{t / 10:.1f}</text>')
    for frac in (0.5, 1.0):
        y = top + plot_h * (1 - frac)
        ticks.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(peak * frac):,}</text>'
        )
        ticks.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
    marker = ""
    if threshold is not None:
        x = left + plot_w * min(max(threshold, 0.0), 1.0)
        marker = (
            f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{top + plot_h}"/>'
            f'<text class="threshold-label" x="{x + 4:.1f}" y="{top + 8}">threshold {threshold:g}</text>'
        )
    return (
        f'<svg class="hist" viewBox="0 0 {width} {height}" role="img" aria-label="Histogram of the {_E(name)} score">'
        f'<line class="axis-line" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
        + "".join(ticks)
        + "".join(bars)
        + marker
        + "</svg>"
    )


def _svg_labels(counts: Sequence[tuple[str, int]], ids: Mapping[str, int]) -> str:
    """Horizontal bars, one per label, each a link to the browser filtered on it."""
    row_h, label_w, width = 22, 180, 640
    peak = max(n for _, n in counts) or 1
    rows = []
    for i, (name, n) in enumerate(counts):
        y = i * row_h
        w = (width - label_w - 70) * n / peak
        rows.append(
            f'<a href="browse.html#label={ids[name]}"><text class="axis" x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f'{_E(name)}</text><rect class="bar pass" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}">'
            f'<title>{_E(name)}: {n:,} clips</title></rect><text class="axis" x="{label_w + w + 6:.1f}" y="{y + 15}">{n:,}</text></a>'
        )
    return (
        f'<svg class="labels" viewBox="0 0 {width} {len(counts) * row_h + 4}" role="img" aria-label="Clips per class label">'
        + "".join(rows)
        + "</svg>"
    )


def _render_distributions(ctx: _Context) -> str:
    sections = []
    descriptions = {
        "language": "Caption against the audio-visual content.",
        "instance": "Audio against the visual content.",
        "temporal": "Mean over 1-s windows of audio-visual agreement.",
    }
    for s in SCORES:
        hist = ctx.index.histograms[s]
        median = hist.median
        mean = hist.total / hist.n if hist.n else None
        reasons = ", ".join(f"{_E(r)} ({n:,})" for r, n in hist.reasons.most_common(3))
        thresholds = len(hist.thresholds)
        facts = [
            ("clips with a score", _fmt_int(hist.n)),
            ("null scores", _fmt_int(hist.nulls) + (f" — {reasons}" if reasons else "")),
            ("mean / median", "–" if mean is None else f"{mean:.3f} / {median:.3f}"),
            (
                "threshold",
                "–"
                if hist.threshold is None
                else f"{hist.threshold:g}" + (" (most common; varies)" if thresholds > 1 else ""),
            ),
            (
                "passed (score at or above its threshold)",
                "–" if not hist.n else f"{_fmt_int(hist.passed)} ({100 * hist.passed / hist.n:.1f}%)",
            ),
        ]
        facts_html = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
        flag = ctx.index.flags.get(s)
        browse = "" if flag is None else f'<a href="browse.html#status=flag:{flag}">Browse the clips it flagged</a>.'
        sections.append(
            f"""<section class="dist" id="{s}">
<h2>{_E(s.capitalize())} alignment <small><code>alignment.{s}.score</code></small></h2>
<p>{_E(descriptions[s])} {browse}</p>
<div class="grid2">{_svg_histogram(hist, s)}<table class="kv">{facts_html}</table></div>
</section>"""
        )
    top_labels = ctx.index.label_counts.most_common(20)
    labels_html = (
        f'<section class="dist"><h2>Most frequent class labels <small><code>labels.category.label</code></small></h2>'
        f"{_svg_labels(top_labels, ctx.index.labels)}</section>"
        if top_labels
        else '<section class="dist"><h2>Class labels</h2><p>No clip in this release has a class label.</p></section>'
    )
    legend = (
        '<p class="legend"><span class="swatch pass"></span> bins at or above the threshold '
        '<span class="swatch flag"></span> below it <span class="swatch mixed"></span> bin holding the threshold</p>'
    )
    body = f"<h1>Score distributions</h1>{legend}{''.join(sections)}{labels_html}"
    return _page(ctx, "distributions.html", "Distributions", body)


# --------------------------------------------------------------------------- server


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (video seeking) and no directory listings."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mp4": "video/mp4",
    }

    def list_directory(self, path: Any) -> None:  # noqa: ANN401 - signature of the base class
        self.send_error(404, "No directory listings")
        return None

    def send_head(self) -> Any:  # noqa: ANN401
        range_header = self.headers.get("Range")
        path = self.translate_path(self.path)
        match = re.match(r"^bytes=(\d*)-(\d*)$", range_header or "")
        if not match or not os.path.isfile(path) or not any(match.groups()):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source: Any, outputfile: Any) -> None:  # noqa: ANN401
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        self._remaining = None
        while remaining > 0:
            block = source.read(min(remaining, 1 << 16))
            if not block:
                break
            outputfile.write(block)
            remaining -= len(block)

    def end_headers(self) -> None:
        if not self.headers.get("Range"):
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

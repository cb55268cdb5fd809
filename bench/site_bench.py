"""Benchmark of the static site at scale: build time, first paint and search latency in headless Chromium.

It writes a synthetic release index (``--rows`` clips of valid schema metadata,
no shards unless ``--media``), builds the site with `build_site`, opens
``browse.html`` from ``file://`` in the system Chromium through Playwright and
times the first paint, the first page of results and a set of queries. It also
serves as the generator of small demo releases (``--media N`` writes N real
H.264 + AAC clips with masks into tar shards) and can save a screenshot.

    .venv/bin/python bench/site_bench.py --rows 100000
    .venv/bin/python bench/site_bench.py --rows 48 --media 48 --screenshot docs/site.png
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acav1m_hf.release import CARD, CROISSANT, REPORT, index_name, shard_name  # noqa: E402
from acav1m_hf.schema import SCHEMA_VERSION, SPLITS, arrow_schema, flatten, validate_metadata  # noqa: E402
from acav1m_hf.site import DEFAULT_CHUNK_ROWS, build_site  # noqa: E402

CHROMIUM = os.environ.get("ACAV1M_CHROMIUM", "/usr/bin/chromium")
THRESHOLDS = {"language": 0.3, "instance": 0.35, "temporal": 0.4}
LABELS = (
    "dog barking", "cat meowing", "car engine", "church bells", "playing guitar", "playing piano", "people talking",
    "baby crying", "rain", "thunder", "train horn", "bird chirping", "lawn mowing", "helicopter", "applause",
    "door knocking", "typing on keyboard", "water flowing", "siren", "chainsaw", "drum kit", "violin", "cow mooing",
    "rooster crowing", "fireworks", "waves crashing", "wind chimes", "skateboarding", "basketball bounce", "vacuum cleaner",
)  # fmt: skip
SUBJECTS = (
    "a brown dog", "a small cat", "a red car", "an old church", "a street musician", "a child", "a woman", "a man",
    "a crowd", "a marching band", "a steam train", "a flock of birds", "a helicopter", "a waterfall", "a drummer",
    "a violinist", "a farmer", "a skateboarder", "two friends", "a teacher",
)  # fmt: skip
ACTIONS = (
    "plays loudly", "barks at a passing bicycle", "walks slowly", "speaks to the camera", "sings along", "waves",
    "runs across the field", "rings", "honks twice", "laughs", "claps", "taps a rhythm", "revs the engine",
)  # fmt: skip
PLACES = (
    "in a park", "on a busy street", "in a small kitchen", "at the beach", "in a concert hall", "near a river",
    "inside a garage", "at a train station", "in the snow", "on a rooftop", "in a forest", "at night",
)  # fmt: skip
SOUNDS = (
    "while traffic hums in the background", "with birdsong behind it", "as rain falls", "over steady applause",
    "while music plays", "with wind noise on the microphone", "as people chat nearby", "in near silence",
)  # fmt: skip


def synthetic_metadata(i: int, rng: np.random.Generator, split: str, caption: str | None = None) -> dict[str, Any]:
    """Schema-valid metadata of a synthetic clip; every tenth clip fails a filter, every 50th lacks a score."""
    video_id = f"vid{i // 3:07d}"
    start = float((i % 3) * 10)
    duration = 2.0
    if caption is None:
        caption = (
            f"{SUBJECTS[rng.integers(len(SUBJECTS))].capitalize()} {ACTIONS[rng.integers(len(ACTIONS))]} "
            f"{PLACES[rng.integers(len(PLACES))]} {SOUNDS[rng.integers(len(SOUNDS))]}."
        )
        if i % 997 == 0:
            caption += " A rare zebra crosses the frame."
        if i % 33_331 == 5:
            caption += " An okapi looks on."  # a needle: 3 clips in 100k, the term index finds its chunks
    scores = {s: float(np.clip(rng.beta(5, 3), 0, 1)) for s in THRESHOLDS}
    if i % 10 == 3:
        scores["language"] = float(rng.uniform(0, THRESHOLDS["language"] - 0.01))
    no_score = i % 50 == 7
    filters = {}
    for name, threshold in THRESHOLDS.items():
        score = None if no_score and name == "instance" else round(scores[name], 6)
        filters[name] = {
            "score": score,
            "raw": None if score is None else round(2 * score - 1, 6),
            "threshold": threshold,
            "passed": None if score is None else score >= threshold,
            "reason": "no audio stream" if score is None else None,
        }
    filters["temporal"]["windows"] = [] if filters["temporal"]["score"] is None else [filters["temporal"]["score"]] * 2
    flags = sorted(n for n, f in filters.items() if f["passed"] is not True)
    cx, cy = float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.25, 0.75))
    half_w, half_h = float(rng.uniform(0.08, 0.2)), float(rng.uniform(0.08, 0.2))
    label = LABELS[rng.integers(len(LABELS))]
    metadata = {
        "key": f"{video_id}-{int(start * 1000):08d}",
        "split": split,
        "source": {
            "video_id": video_id,
            "path": f"s3://bucket/videos/{video_id}.mp4",
            "start": start,
            "end": start + duration,
            "license": "CC BY 4.0",
            "text": None,
            "title": None,
            "uploader": None,
            "upload_date": None,
        },
        "clip": {"duration": duration, "fps": 10.0, "width": 320, "height": 240, "sample_rate": 16000},
        "caption": {
            "text": caption,
            "origin": "synthetic",
            "descriptions": [caption],
            "transcript": None,
            "reason": None,
        },
        "alignment": {
            **filters,
            "sync": {
                "offset": round(float(rng.normal(0, 0.05)), 4),
                "confidence": 0.8,
                "realigned": False,
                "reason": None,
            },
            "flags": flags,
            "passed": not flags,
        },
        "labels": {
            "category": {
                "label": label,
                "id": LABELS.index(label),
                "score": round(float(rng.uniform(0.3, 1)), 4),
                "reason": None,
            },
            "localization": {
                "peak": [round(cx, 4), round(cy, 4)],
                "box": [round(cx - half_w, 4), round(cy - half_h, 4), round(cx + half_w, 4), round(cy + half_h, 4)],
                "reason": None,
            },
            "mask": {"present": True, "reason": None},
        },
        "embeddings": {"present": False, "rows": [], "model": None, "reason": "no embedder in this profile"},
        "pipeline": {
            "version": "0.1.0",
            "profile": "synthetic",
            "schema": SCHEMA_VERSION,
            "models": {"captioner": None, "condenser": None, "transcriber": None, "embedder": None, "aligner": None},
        },
    }
    return metadata


def _media(metadata: dict[str, Any]) -> dict[str, bytes]:
    """mp4 (H.264 + AAC), mask.png and jpg of a synthetic clip: a bright disc that pulses with a tone."""
    import av
    from PIL import Image

    w, h, fps, seconds = 320, 240, 10, 2.0
    box = metadata["labels"]["localization"]["box"]
    cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
    rx, ry = (box[2] - box[0]) / 2 * w * 0.8, (box[3] - box[1]) / 2 * h * 0.8
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    seed = int(metadata["key"][3:10])
    base = np.stack(
        [
            (60 + 80 * xx / w + 20 * (seed % 5)).astype(np.uint8),
            (90 + 60 * yy / h).astype(np.uint8),
            np.full((h, w), 120 + 15 * (seed % 7), np.uint8),
        ],
        axis=-1,
    )
    frames = []
    for k in range(int(fps * seconds)):
        frame = base.copy()
        level = 255 if k % 5 < 2 else 180
        frame[inside] = (level, level, 60)
        frames.append(frame)
    t = np.arange(int(16000 * seconds)) / 16000
    audio = (0.2 * np.sin(2 * np.pi * 440 * t) * ((t * fps).astype(int) % 5 < 2)).astype(np.float32)

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        vstream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "threads": "1"})
        vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
        astream = out.add_stream("aac", rate=16000, layout="mono")
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vstream.encode(frame))
        out.mux(vstream.encode(None))
        for s in range(0, len(audio), 1024):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[None, s : s + 1024]), format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts, chunk.time_base = 16000, s, Fraction(1, 16000)
            out.mux(astream.encode(chunk))
        out.mux(astream.encode(None))
    mask, jpg = io.BytesIO(), io.BytesIO()
    Image.fromarray((inside * 255).astype(np.uint8), mode="L").save(mask, format="PNG")
    Image.fromarray(frames[0]).save(jpg, format="JPEG", quality=85)
    return {"mp4": buffer.getvalue(), "mask.png": mask.getvalue(), "jpg": jpg.getvalue()}


def write_release(root: Path, rows: int, media: int = 0, captions: dict[int, str] | None = None, seed: int = 0) -> Path:
    """A release folder with ``rows`` synthetic clips; the first ``media`` clips of each split get real media.

    Rows stream into the Parquet files in batches, so a million rows need little memory.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds

    rng = np.random.default_rng(seed)
    captions = captions or {}
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(parents=True, exist_ok=True)
    schema = arrow_schema()
    writers: dict[str, Any] = {}
    tars: dict[str, Any] = {}
    batches: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    clips = dict.fromkeys(SPLITS, 0)
    passed = {name: [0, 0] for name in THRESHOLDS}

    def flush(split: str) -> None:
        if split not in writers:
            writers[split] = pq.ParquetWriter(root / index_name(split), schema)
        writers[split].write_table(pa.Table.from_pylist(batches[split], schema=schema))
        batches[split] = []

    for i in range(rows):
        split = SPLITS[0] if i % 10 < 8 else SPLITS[1] if i % 10 == 8 else SPLITS[2]
        metadata = synthetic_metadata(i, rng, split, captions.get(i))
        if i == 0:
            assert not validate_metadata(metadata), validate_metadata(metadata)
        shard = shard_name(split, 0)
        if clips[split] < media:
            if split not in tars:
                tars[split] = wds.TarWriter(str(root / shard), encoder=False)
            members = {"json": json.dumps(metadata).encode(), "txt": metadata["caption"]["text"].encode()}
            tars[split].write({"__key__": metadata["key"], **members, **_media(metadata)})
        clips[split] += 1
        for name in THRESHOLDS:
            if metadata["alignment"][name]["score"] is not None:
                passed[name][0] += metadata["alignment"][name]["passed"]
                passed[name][1] += 1
        batches[split].append({"shard": shard, "key": metadata["key"], **flatten(metadata)})
        if len(batches[split]) >= 50_000:
            flush(split)
    for split in SPLITS:
        if batches[split]:
            flush(split)
        if split in writers:
            writers[split].close()
        if split in tars:
            tars[split].close()
    report: dict[str, Any] = {
        "splits": {s: {"clips": n, "seconds": 2.0 * n} for s, n in clips.items() if n},
        "pass_rates": {name: (p / n if n else None) for name, (p, n) in passed.items()},
        "counts": {"inputs": rows // 3, "clips": {"kept": rows}},
    }
    (root / REPORT).write_text(json.dumps(report, indent=2))
    (root / CROISSANT).write_text(
        json.dumps({"@type": "sc:Dataset", "name": "ACAV-1M", "recordSet": [{"@id": "clips"}]})
    )
    (root / CARD).write_text(
        "---\nlicense: cc-by-4.0\npretty_name: ACAV-1M (synthetic)\n---\n"
        "# ACAV-1M (synthetic)\n\nA **synthetic** release for the site benchmark.\n\n"
        "## Citation\n\n```bibtex\n@misc{acav1m_synthetic,\n  title = {Synthetic ACAV-1M},\n  year = {2024}\n}\n```\n"
    )
    return root


# --------------------------------------------------------------------------- browser measurements


def _launch(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
    )


def measure(site: Path, queries: list[str], repeats: int = 3) -> dict[str, Any]:
    """First paint, first results and per-query latency of ``site/browse.html`` opened from file://."""
    from playwright.sync_api import sync_playwright

    url = (site / "browse.html").resolve().as_uri()
    figures: dict[str, Any] = {"loads": [], "queries": {}}
    with sync_playwright() as p:
        browser = _launch(p)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_function("() => window.ACAV && ACAV.stats.firstResultsAt !== null", timeout=60_000)
            figures["loads"].append(
                page.evaluate(
                    """() => ({
                    fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
                    firstResults: ACAV.stats.firstResultsAt,
                    domContentLoaded: performance.timing.domContentLoadedEventEnd - performance.timing.navigationStart,
                    heapMB: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null})"""
                )
            )
            for q in queries:
                for _ in range(2):  # cold (chunks/terms to load) then warm
                    n = page.evaluate("ACAV.stats.queries")
                    page.evaluate("q => ACAV.query(q)", q)
                    page.wait_for_function(f"() => ACAV.stats.queries > {n} && ACAV.stats.done", timeout=60_000)
                    stats = page.evaluate(
                        """({ms: ACAV.stats.lastMs, first: ACAV.stats.firstCardMs, counted: ACAV.stats.counted,
                            candidates: ACAV.stats.candidates})"""
                    )
                    figures["queries"].setdefault(q, []).append(stats)
            page.close()
        browser.close()
    return figures


def screenshot(site: Path, path: Path, query: str = "") -> None:
    """A PNG of the clip browser with playing videos, for the README."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
        page.goto((site / "browse.html").resolve().as_uri() + (f"#q={query}" if query else ""))
        page.wait_for_function("() => window.ACAV && ACAV.stats.done")
        page.evaluate(
            """() => Promise.all(Array.from(document.querySelectorAll('video')).slice(0, 6).map(v => {
                v.muted = true; return v.play().then(() => new Promise(r => setTimeout(r, 700))).then(() => v.pause()).catch(() => null);
            }))"""
        )
        page.screenshot(path=str(path))
        browser.close()


def _js_rows(site: Path) -> int:
    text = (site / "data" / "manifest.js").read_text(encoding="utf-8")
    return json.loads(text[len("ACAV.manifest(") : -len(");\n")])["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--media", type=int, default=0, help="clips per split with real media in the shards")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--work", type=Path, default=None, help="folder for the release and site (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--release", type=Path, default=None, help="use this release instead of a synthetic one")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="acav1m-site-bench-"))
    release, site = args.release or work / "release", work / "site"
    t = time.perf_counter()
    if args.release is None:
        write_release(release, args.rows, media=args.media)
    t_release = time.perf_counter() - t
    t = time.perf_counter()
    build_site(release, site, chunk_rows=args.chunk_rows, max_media=3 * args.media if args.release is None else 200)
    t_build = time.perf_counter() - t
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    chunks = sorted((site / "data" / "chunks").glob("*.js"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    rows = _js_rows(site)
    print(f"rows: {rows:,}  chunk rows: {args.chunk_rows:,}  chunks: {len(chunks)}")
    print(f"synthetic release: {t_release:.1f} s   build_site: {t_build:.1f} s   site size: {size / 1e6:.1f} MB")
    print(f"manifest.js: {(site / 'data' / 'manifest.js').stat().st_size / 1e3:.0f} KB   "
          f"largest chunk: {max(c.stat().st_size for c in chunks) / 1e6:.2f} MB   "
          f"term files: {len(list((site / 'data' / 'terms').glob('*.js')))}")  # fmt: skip
    if args.screenshot:
        screenshot(site, args.screenshot)
        print(f"screenshot: {args.screenshot}")
        return
    queries = [
        "q=dog",  # common word: the first chunk fills the page
        "q=zebra",  # rare word (0.1% of clips) in every chunk: several chunks to fill a page
        "q=okapi",  # needle (0.003%): the term index names the few chunks to load
        "q=violinist%20concert%20hall",  # three words
        "q=xylophone",  # no match: the term index rules out every chunk
        "split=test&status=flagged",  # facets skip train and validation chunks
        "q=dog&instance=0.8-1",  # text and a score range
        "q=zebra&temporal=0.97-1",  # worst case: rare matches no index rules out, every chunk is scanned
    ]
    figures = measure(site, queries, args.repeats)
    loads = figures["loads"]
    med = statistics.median
    print(f"first contentful paint: {med(x['fcp'] for x in loads):.0f} ms   "
          f"first results rendered: {med(x['firstResults'] for x in loads):.0f} ms after navigation   "
          f"(median of {len(loads)} loads; JS heap {med(x['heapMB'] or 0 for x in loads):.0f} MB)")  # fmt: skip
    print("query (URL hash)                     first card / page done, cold (first run) and warm (repeat), ms")
    for q, runs in figures["queries"].items():
        cold, warm = runs[0::2], runs[1::2]

        def both(rs: list[dict[str, Any]]) -> str:
            first = [r["first"] for r in rs if r["first"] is not None]
            return f"{med(first) if first else float('nan'):7.1f} / {med(r['ms'] for r in rs):7.1f}"

        print(f"  {q:34} cold {both(cold)}   warm {both(warm)}   "
              f"matches counted {runs[-1]['counted']:,}, candidate chunks {runs[-1]['candidates']}")  # fmt: skip


if __name__ == "__main__":
    main()

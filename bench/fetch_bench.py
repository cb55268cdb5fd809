"""Fetching: clips/s of curating an ACAV100M-shaped index fetched from a local server, against reading from disk.

Inputs (generated once with ffmpeg and cached in ``OUT/fetch-inputs/``): ``--videos`` sources of
``--source-seconds`` s at 640x360, 25 fps, H.264 + AAC 44.1 kHz with the index at the front (``+faststart``, as
sites serve them), each a differently tinted ffmpeg test pattern with a beeping tone. One row per source names a
``--clip-seconds`` window at its start, middle or end. The sources are served by `tests.media_server` on
127.0.0.1 (range requests, a thread per request) and every case runs in this process, local engine, one unit (all
rows in the train split, ``inputs_per_unit`` = the row count, so that every fetch of the unit can run at once):

* ``disk``: `curate` of a manifest naming the local files with the same windows (``path,video_id,start,end``): no
  fetching, the limit of the goal;
* ``fetch-N``: `curate` of the index (``videoID,start,end``) with ``--url-template`` pointing at the server and an
  empty fetch cache, ``N`` fetches at once (``--fetch-concurrency N --per-host N --fetch-interval 0``): each row's
  window plus ``max_offset`` each side is fetched with yt-dlp and cut by ffmpeg (re-encoded at the cut) while the
  unit decodes the rows before it;
* ``fetch-only-N``: ``acav1m fetch`` of the index into an empty cache, ``N`` at once: what the fetching alone costs.

Clips/s counts every clip the decoder cut (kept or rejected); CPU s per clip (this process and its reaped children,
ffmpeg included) is the figure that a loaded machine disturbs least. The goal: with concurrency, curating fetched clips runs
at >= 1/1.2 of the speed of curating them from disk (fetching costs <= 1.2x).

    .venv/bin/python bench/fetch_bench.py --out bench/out
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Result, bench_parser, machine_line, paired_rounds, ratio, summary_rows  # noqa: E402

GOAL = 1 / 1.2
"""Fetched clips/s over disk clips/s: fetching costs at most 1.2x."""


def make_inputs(folder: Path, videos: int, seconds: float) -> list[Path]:
    """``videos`` sources of ``seconds`` s in ``folder/media`` (cached by their parameters)."""
    media, marker = folder / "media", folder / "inputs.json"
    params = {"videos": videos, "seconds": seconds, "version": 1}
    paths = [media / f"v{k:03d}.mp4" for k in range(videos)]
    if marker.exists() and json.loads(marker.read_text()) == params and all(p.exists() for p in paths):
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    media.mkdir(parents=True)
    for k, path in enumerate(paths):
        video = f"testsrc2=s=640x360:r=25,hue=h={(37 * k) % 360}"
        audio = f"sine=frequency={220 + 20 * k}:beep_factor=4:sample_rate=44100"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-t", f"{seconds}"]
            + ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac"]
            + ["-movflags", "+faststart", str(path)],
            check=True,
        )
    marker.write_text(json.dumps(params))
    return paths


def windows(paths: list[Path], seconds: float, clip: float, margin: float) -> list[tuple[Path, float, float]]:
    """One window per source, at its start, middle or end, with room for the fetch's margin each side."""
    room = max(0.0, seconds - clip - 2 * margin)
    starts = [round(margin + (k % 3) * room / 2, 3) for k in range(len(paths))]
    return [(path, start, round(start + clip, 3)) for path, start in zip(paths, starts, strict=True)]


def write_manifests(folder: Path, rows: list[tuple[Path, float, float]]) -> tuple[Path, Path]:
    """The index the server is fetched by, and the manifest of the same windows on local disk."""
    index, disk = folder / "index.csv", folder / "disk.csv"
    with open(index, "w", newline="") as f:
        csv.writer(f).writerows([("videoID", "start", "end"), *((p.stem, s, e) for p, s, e in rows)])
    with open(disk, "w", newline="") as f:
        csv.writer(f).writerows([("path", "video_id", "start", "end"), *((str(p), p.stem, s, e) for p, s, e in rows)])
    return index, disk


def run(args: argparse.Namespace) -> Result:
    from curation.config import CurationConfig
    from curation.fetch_run import fetch_inputs
    from curation.run import curate
    from curation.segments import FetchOptions
    from tests.media_server import MediaServer

    print(machine_line())
    folder = args.out / "fetch-inputs"
    paths = make_inputs(folder, args.videos, args.source_seconds)
    config = CurationConfig(
        clip_seconds=args.clip_seconds, keep_flagged=True, split_fractions=(1.0, 0.0, 0.0), inputs_per_unit=len(paths)
    )
    index, disk = write_manifests(folder, windows(paths, args.source_seconds, args.clip_seconds, config.max_offset))
    server = MediaServer(folder / "media")
    template = f"{server.url}/{{videoID}}.mp4"
    source_bytes = sum(p.stat().st_size for p in paths)
    scratch, runs = args.out / "fetch-scratch", count()
    print(f"inputs: {len(paths)} sources of {args.source_seconds:g} s, one {args.clip_seconds:g}-s window each")

    def options(concurrency: int) -> FetchOptions:
        cache = scratch / f"cache-{next(runs)}"  # empty: every segment is fetched
        return FetchOptions(cache_dir=str(cache), per_host=concurrency, concurrency=concurrency, interval=0)

    def curated(manifest: Path, fetch: FetchOptions | None) -> tuple[int, int]:
        shutil.rmtree(scratch, ignore_errors=True)
        report = curate(
            [str(manifest)], scratch / "out", config, log=lambda _m: None, fetch=fetch, url_template=template
        )
        curated.last = report["counts"]  # type: ignore[attr-defined]
        shutil.rmtree(scratch, ignore_errors=True)
        return report["counts"]["clips"]["total"], source_bytes

    def fetched(concurrency: int) -> tuple[int, int]:
        shutil.rmtree(scratch, ignore_errors=True)
        fetch = options(concurrency)
        outcomes = fetch_inputs([str(index)], fetch.cache_dir, config.max_offset, fetch, template)
        shutil.rmtree(scratch, ignore_errors=True)
        if outcomes != {"fetched": len(paths)}:
            raise RuntimeError(f"fetch-only-{concurrency}: {dict(outcomes)}")
        return len(paths), source_bytes

    cases = {"disk": lambda: curated(disk, None)}
    for n in args.concurrency:
        cases[f"fetch-{n}"] = lambda n=n: curated(index, options(n))
    cases[f"fetch-only-{max(args.concurrency)}"] = lambda: fetched(max(args.concurrency))
    try:
        curated(disk, None)  # warms the page cache and the imports before any timing
        result = Result("fetch", params={k: str(v) for k, v in vars(args).items()})
        timed = paired_rounds(cases, args.rounds)
    finally:
        server.stop()
    result.rows = summary_rows(timed)
    for n in args.concurrency:
        label = f"curate, {n} fetch{'es' if n > 1 else ''} at once / read from disk (clips/s)"
        result.ratios.append(ratio(timed, f"fetch-{n}", "disk", label, GOAL))
    top = max(args.concurrency)
    result.ratios.append(ratio(timed, f"fetch-only-{top}", "disk", f"fetch only, {top} at once / curate from disk"))
    for row in result.rows:  # CPU time is what a shared machine's load disturbs least
        result.figures[f"CPU s per clip, {row['case']}"] = round(row["cores"] * row["seconds"] / row["samples"], 2)
    last = curated.last  # type: ignore[attr-defined]
    result.figures["clips per run: total / kept / rejected"] = (
        f"{last['clips']['total']} / {last['clips']['kept']} / {last['clips']['rejected']}"
    )
    result.notes.append("MB/s: of the source files; a fetch downloads only the window and its margins")
    result.notes.append(f"goal: fetched / disk >= {GOAL:.2f} (fetching costs <= 1.2x)")
    return result


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__, rounds=3, only=None)
    p.add_argument("--videos", type=int, default=16, help="sources, one window each (default 16)")
    p.add_argument("--source-seconds", type=float, default=30.0)
    p.add_argument("--clip-seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=lambda t: [int(n) for n in t.split(",")], default=[1, 4, 16])
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    run(args).report(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

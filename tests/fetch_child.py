"""A process that fetches segments into a shared cache: one of the parties of the cross-process per-host limit test.

    python -m tests.fetch_child --cache CACHE --ready DIR --name a --parties 2 URL...

It writes ``DIR/NAME`` and waits until ``DIR`` holds ``--parties`` files (a barrier: every party starts fetching at
the same moment, so that they contend for the host's slots), then fetches the 1-s window at 1 s of every URL,
``--concurrency`` at a time, and exits 1 if one failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from curation.records import InputItem
from curation.segments import FetchOptions, SegmentFetcher


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("urls", nargs="+")
    p.add_argument("--cache", required=True)
    p.add_argument("--ready", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--parties", type=int, required=True)
    p.add_argument("--per-host", type=int, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    args = p.parse_args()
    options = FetchOptions(cache_dir=args.cache, per_host=args.per_host, interval=0, socket_timeout=30, attempts=1)
    fetcher = SegmentFetcher(options)
    import yt_dlp  # noqa: F401 - imported before the barrier: the parties start fetching together, not importing

    (args.ready / args.name).touch()
    while len(list(args.ready.iterdir())) < args.parties:
        time.sleep(0.01)
    items = [InputItem(path=url, video_id=url, start=1.0, end=2.0, ytdlp=True) for url in args.urls]
    with ThreadPoolExecutor(args.concurrency) as pool:
        segments = list(pool.map(lambda item: fetcher.fetch(item, margin=0.0), items))
    print(f"{args.name}: fetched {len(segments)} segments", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

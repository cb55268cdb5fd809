"""``acav1m fetch``: fetch the segments a manifest names into the fetch cache, without curating them.

To download on one machine and curate on another: ``acav1m fetch MANIFEST -o CACHE`` fills ``CACHE``, and
``acav1m curate MANIFEST -o OUT --cache-dir CACHE`` (with the same ``max_offset``, which decides each segment's
margin and so its cache key) finds every segment there. Every input ends with a line in ``CACHE/fetched.jsonl``, as in
a release's ``inputs.jsonl``: ``fetched``, ``rejected`` with the fetch's reason, or ``not_fetched`` for an input read
as it is (a local file, a media URL). Segments already in the cache are not fetched again.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from curation.inputs import input_line, read_inputs
from curation.manifest import DEFAULT_URL_TEMPLATE
from curation.records import InputItem, InputLine, Rejected
from curation.segments import FetchOptions, SegmentFetcher, fetcher_for

FETCHED = "fetched.jsonl"


def fetch_inputs(
    inputs: list[str],
    cache_dir: str | Path,
    margin: float,
    options: FetchOptions,
    url_template: str = DEFAULT_URL_TEMPLATE,
) -> Counter[str]:
    """Fetch every segment ``inputs`` name into ``cache_dir``; write ``fetched.jsonl``; return the outcome counts."""
    options = replace(options, cache_dir=str(cache_dir))
    items, problems = read_inputs(inputs, exclude=cache_dir, url_template=url_template)
    fetcher = fetcher_for(options)
    lines: dict[int, InputLine] = {}
    for position, item in enumerate(items):
        if not item.ytdlp:
            lines[position] = input_line(item, "not_fetched", None, "read as it is by curate", 0, {})
    wanted = [position for position in range(len(items)) if position not in lines]
    with ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="fetch") as pool:
        running = {pool.submit(_fetch_one, fetcher, items[p], margin): p for p in wanted}
        for done in tqdm(as_completed(running), total=len(running), unit="segment", desc="fetch"):
            lines[running[done]] = done.result()
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_dir) / FETCHED, "w", encoding="utf-8") as out:
        for position in range(len(items)):
            out.write(json.dumps(lines[position].to_dict(), sort_keys=True) + "\n")
        for problem in problems:
            item = InputItem(problem.input, None)  # type: ignore[arg-type]  # as finalize writes a problem's line
            line = input_line(item, "rejected", problem.reason, problem.detail, 0, {})
            out.write(json.dumps(line.to_dict(), sort_keys=True) + "\n")
    return Counter(line.reason or line.outcome for line in lines.values()) + Counter(p.reason for p in problems)


def _fetch_one(fetcher: SegmentFetcher, item: InputItem, margin: float) -> InputLine:
    try:
        fetcher.fetch(item, margin)
    except Rejected as rejected:
        return input_line(item, "rejected", rejected.reason, rejected.detail, 0, {}, rejected.retryable)
    return input_line(item, "fetched", None, "", 0, {})

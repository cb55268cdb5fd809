"""Fetching with yt-dlp, segment by segment (issue 12), against a local server holding real clips: no network.

yt-dlp's generic extractor reads the server as it would any site's direct media link; ffmpeg cuts the window with
range requests. The server's request log says what was fetched, and how often.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from curation.cli import main
from curation.config import CurationConfig
from curation.fetch_run import FETCHED
from curation.records import InputItem, Rejected
from curation.run import curate
from curation.segments import FetchOptions, SegmentFetcher
from tests.conftest import SAMPLE_DATA
from tests.media_server import MediaServer, serve_copies

CONFIG = CurationConfig(clip_seconds=4.0, max_side=128, keep_flagged=True)
CLIP = SAMPLE_DATA / "techslides_small.mp4"
"""5.6 s, H.264 and AAC."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MediaServer]:
    names = ("ok", "busy", "slow", "stall", "gone")
    running = serve_copies(tmp_path / "www", {f"{name}.mp4": CLIP for name in names})
    running.plans["/busy.mp4"] = [500, 500]  # the third attempt is served
    running.plans["/slow.mp4"] = [(429, 7)]
    running.always["/stall.mp4"] = "stall"
    running.always["/gone.mp4"] = 404
    www = tmp_path / "www"
    (www / "page.html").write_text("<!doctype html><title>no video here</title>", encoding="utf-8")
    (www / "cut.mp4").write_bytes(CLIP.read_bytes()[: CLIP.stat().st_size // 2])
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(CLIP), "-an", "-c", "copy", str(www / "mute.mp4")], check=True)
    (www / "short.mov").write_bytes((SAMPLE_DATA / "psychtoolbox_dualdiscs.mov").read_bytes())
    yield running
    running.stop()


def _options(tmp_path: Path) -> FetchOptions:
    return FetchOptions(cache_dir=str(tmp_path / "cache"), backoff=0.01, interval=0, socket_timeout=1.0, attempts=3)


def _fetch(fetcher: SegmentFetcher, server: MediaServer, name: str) -> Rejected | float:
    """The fetched segment's duration in seconds, or the rejection."""
    item = InputItem(path=f"{server.url}/{name}", video_id=name, start=2.0, end=3.5, ytdlp=True)
    try:
        segment = fetcher.fetch(item, margin=1.0)
    except Rejected as rejected:
        return rejected
    assert segment.offset == 1.0
    with av.open(segment.path) as container:
        return float(container.duration / av.time_base)


def test_each_failure_is_classified_transient_ones_retried_and_a_segment_is_the_window_and_its_margins(
    tmp_path: Path, server: MediaServer
) -> None:
    waits: list[float] = []
    fetcher = SegmentFetcher(_options(tmp_path), sleep=waits.append)

    assert _fetch(fetcher, server, "ok.mp4") == pytest.approx(3.5, abs=0.1)  # 2.0-3.5 and 1 s each side
    assert _fetch(fetcher, server, "busy.mp4") == pytest.approx(3.5, abs=0.1)
    assert server.plans["/busy.mp4"] == [] and len(waits) == 2  # both 500s answered, each waited for, then served
    assert _fetch(fetcher, server, "slow.mp4") == pytest.approx(3.5, abs=0.1)
    assert waits[2] == 7.0  # the server's Retry-After

    outcomes = {name: _fetch(fetcher, server, name) for name in ("gone.mp4", "stall.mp4", "page.html", "mute.mp4")}
    reasons = {name: (r.reason, r.retryable) for name, r in outcomes.items() if isinstance(r, Rejected)}
    assert reasons == {
        "gone.mp4": ("http_404", False),
        "stall.mp4": ("timeout", True),
        "page.html": ("unsupported_url", False),
        "mute.mp4": ("no_audio_in_source", False),
    }
    assert server.counts["/gone.mp4"] == 1  # permanent: never asked again
    assert server.counts["/stall.mp4"] == 3  # every attempt, each bounded by the socket timeout
    assert "after 3 attempts" in outcomes["stall.mp4"].detail  # type: ignore[union-attr]

    cut = _fetch(fetcher, server, "cut.mp4")  # half an mp4: its index (at the end) is missing
    assert isinstance(cut, Rejected), cut
    assert (cut.reason, cut.retryable) == ("fetch_failed", True) and "ffmpeg could not cut" in cut.detail


def _write_index(path: Path, rows: list[tuple[str, float, float]]) -> Path:
    """An ACAV100M-shaped index: videoID, start, end."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["videoID", "start", "end"])
        writer.writerows(rows)
    return path


ROWS = [("ok", 1.0, 3.0), ("ok", 3.0, 5.0), ("busy", 0.5, 2.5), ("gone", 0.0, 2.0), ("mute", 1.0, 3.0)]


def _lines(folder: Path, name: str) -> dict[tuple[str, float], dict]:
    lines = [json.loads(text) for text in (folder / name).read_text().splitlines()]
    return {(line["video_id"], line["start"]): line for line in lines}


def _sources(release: Path) -> dict[tuple[str, float], dict]:
    import pyarrow.parquet as pq

    rows = [row for split in release.glob("metadata/*.parquet") for row in pq.read_table(split).to_pylist()]
    return {(row["source.video_id"], row["source.start"]): row for row in rows}


def test_an_acav100m_index_is_curated_from_the_server_and_a_rerun_fetches_nothing_again(
    tmp_path: Path, server: MediaServer
) -> None:
    index = _write_index(tmp_path / "acav100m.csv", ROWS)
    template = f"{server.url}/{{videoID}}.mp4"
    report = curate([str(index)], tmp_path / "out", CONFIG, log=print, fetch=_options(tmp_path), url_template=template)

    lines = _lines(tmp_path / "out", "inputs.jsonl")
    assert sorted(lines) == sorted((video, start) for video, start, _ in ROWS)  # every row ends with an outcome
    outcomes = {key: (line["outcome"], line["reason"]) for key, line in lines.items()}
    assert outcomes == {
        ("ok", 1.0): ("kept", None),
        ("ok", 3.0): ("kept", None),
        ("busy", 0.5): ("kept", None),
        ("gone", 0.0): ("rejected", "http_404"),
        ("mute", 1.0): ("rejected", "no_audio_in_source"),
    }
    kept = _sources(tmp_path / "out")
    for video, start, end in ROWS[:3]:
        row = kept[(video, start)]
        assert (row["source.start"], row["source.end"]) == (start, end)
        assert row["source.path"] == f"{server.url}/{video}.mp4"
        assert row["source.title"] == video  # what the generic extractor states: the file's name
    assert report["reasons"]["inputs"] == {"http_404": 1, "no_audio_in_source": 1}

    before = dict(server.counts)
    curate([str(index)], tmp_path / "again", CONFIG, log=print, fetch=_options(tmp_path), url_template=template)
    for name in ("ok", "busy", "mute"):  # the finished segments come from the cache
        assert server.counts[f"/{name}.mp4"] == before[f"/{name}.mp4"]
    assert server.counts["/gone.mp4"] == before["/gone.mp4"] + 1  # a failure is not cached: asked again
    assert _sources(tmp_path / "again").keys() == kept.keys()


def test_acav1m_fetch_fills_a_cache_that_curate_reads_without_a_request(tmp_path: Path, server: MediaServer) -> None:
    index = _write_index(tmp_path / "acav100m.csv", [*ROWS[:2], ("gone", 0.0, 2.0)])
    template = ["--url-template", f"{server.url}/{{videoID}}.mp4", "--fetch-interval", "0"]
    assert main(["fetch", str(index), "-o", str(tmp_path / "cache"), *template]) == 0
    fetched = _lines(tmp_path / "cache", FETCHED)
    assert {key: (line["outcome"], line["reason"]) for key, line in fetched.items()} == {
        ("ok", 1.0): ("fetched", None),
        ("ok", 3.0): ("fetched", None),
        ("gone", 0.0): ("rejected", "http_404"),
    }

    before = server.counts["/ok.mp4"]
    args = ["curate", str(index), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *template]
    assert main([*args, "--clip-seconds", "4", "--keep-flagged"]) == 0
    assert server.counts["/ok.mp4"] == before
    assert set(_sources(tmp_path / "out")) == {("ok", 1.0), ("ok", 3.0)}


def test_a_url_template_without_the_id_is_refused(tmp_path: Path) -> None:
    index = _write_index(tmp_path / "acav100m.csv", ROWS[:1])
    assert main(["fetch", str(index), "-o", str(tmp_path / "cache"), "--url-template", "http://127.0.0.1/x"]) != 0
    assert not (tmp_path / "cache").exists()


def test_the_cache_keeps_under_its_cap_by_removing_the_segment_used_longest_ago(
    tmp_path: Path, server: MediaServer
) -> None:
    from dataclasses import replace

    fetcher = SegmentFetcher(replace(_options(tmp_path), cache_max_bytes=1))  # room for the newest segment only
    first = InputItem(path=f"{server.url}/ok.mp4", video_id="ok", start=1.0, end=2.0, ytdlp=True)
    second = replace(first, start=3.0, end=4.0)
    kept = fetcher.fetch(second, margin=0.0)
    removed = fetcher.fetch(first, margin=0.0)
    assert Path(removed.path).is_file() and not Path(kept.path).exists()
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir() if p.is_file()) == [".json", ".mp4"]
    requests = server.counts["/ok.mp4"]
    fetcher.fetch(first, margin=0.0)
    assert server.counts["/ok.mp4"] == requests  # still there: no request
    fetcher.fetch(second, margin=0.0)
    assert server.counts["/ok.mp4"] > requests  # removed: fetched again

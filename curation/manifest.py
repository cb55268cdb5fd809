"""Manifest rows: CSV, JSONL or Parquet, each row naming one input by path, URL or video id, with its window.

A row names its video by ``path`` or ``url`` (a file, an fsspec URL, or a page that yt-dlp reads), or by a video id
(``videoID``, as in ACAV100M's own metadata files, or ``youtube_id``) from which ``url_template`` builds the URL:
ACAV100M's index (``videoID,start,end``) is read as it is. Optional columns: ``video_id`` (the id recorded, when the
row gives a path), ``start``, ``end`` (seconds), ``text``, ``license``. `curation.inputs` turns rows into items.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={videoID}"
"""Where a row's ``videoID`` is fetched from; ``--url-template`` points it at a mirror (or a test's local server)."""
ID_COLUMNS = ("videoID", "youtube_id")
"""Columns that name a video by its site's id, in the order they are looked for."""
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".webm", ".ogv", ".avi", ".m4v", ".mpeg", ".mpg", ".flv", ".ts"})
"""Names of media files: a folder's file with one is curated without a probe, and a URL with one is read directly."""


@dataclass(frozen=True)
class ManifestRow:
    """One row's input: where it is, as written and as built, and its window and text."""

    location: str
    """A path (as written, not yet resolved against the manifest's folder) or a URL."""
    video_id: str | None
    start: float | None
    end: float | None
    text: str | None
    license: str | None
    ytdlp: bool
    """Fetched with yt-dlp (a video id, or an http(s) URL that is not a media file), else read through fsspec."""


def check_template(template: str) -> str:
    """``template`` if it holds ``{videoID}``; else a `ValueError` saying what it needs."""
    if "{videoID}" not in template:
        raise ValueError(f"--url-template {template!r} has no {{videoID}} to put the video id in")
    return template


def read_rows(handle: IO[bytes], suffix: str) -> tuple[set[str], list[tuple[int, dict[str, Any]]]]:
    """The manifest's column names and its rows, each with its line (CSV, JSONL) or row number (Parquet).

    Read without pandas, so that a null stays None and a NaN stays a float: a
    NaN ``start`` is then a bad row, not a missing value.
    """
    if suffix == ".csv":
        reader = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8-sig", newline=""))
        return set(reader.fieldnames or ()), [(reader.line_num, row) for row in reader]
    if suffix == ".jsonl":
        rows = []
        for number, text in enumerate(io.TextIOWrapper(handle, encoding="utf-8"), start=1):
            if text.strip():
                row = json.loads(text)
                if not isinstance(row, dict):
                    raise ValueError(f"line {number} is not a JSON object")
                rows.append((number, row))
        return {name for _, row in rows for name in row}, rows
    import pyarrow.parquet as pq

    table = pq.read_table(handle)
    return set(table.column_names), list(enumerate(table.to_pylist(), start=1))


def missing_columns(columns: set[str]) -> str | None:
    """Why a manifest with these columns names no input, or None when it does."""
    if {"path", "url", *ID_COLUMNS} & columns:
        return None
    return "needs a 'path', 'url', 'videoID' or 'youtube_id' column"


def parse_row(row: dict[str, Any], url_template: str) -> ManifestRow:
    """The input a row names; a `ValueError` naming the column for a row without one or with a bad window."""
    location = _text(row.get("path")) or _text(row.get("url"))
    site_id = next((text for column in ID_COLUMNS if (text := _text(row.get(column)))), None)
    if location is None and site_id is None:
        raise ValueError("no path, url, videoID or youtube_id")
    start, end = _seconds(row, "start"), _seconds(row, "end")
    if end is not None and end <= (start or 0.0):
        raise ValueError(f"column end: {end} is not after start {start or 0}")
    if location is None:
        assert site_id is not None
        location = url_template.replace("{videoID}", quote(site_id, safe="-_"))
        ytdlp = True
    else:
        ytdlp = is_page(location)
    return ManifestRow(
        location=location,
        video_id=_text(row.get("video_id")) or site_id,
        start=start,
        end=end,
        text=_text(row.get("text")),
        license=_text(row.get("license")),
        ytdlp=ytdlp,
    )


def is_page(location: str) -> bool:
    """Whether ``location`` is an http(s) URL of a page (no media suffix), which yt-dlp resolves to the video."""
    web = location.split("://", 1)[0].lower() in {"http", "https"}
    return web and Path(location.split("?")[0]).suffix.lower() not in VIDEO_SUFFIXES


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _seconds(row: dict[str, Any], column: str) -> float | None:
    """The row's ``column`` in seconds: None when empty; a `ValueError` naming the column unless finite and >= 0."""
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"column {column}: not a number of seconds: {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"column {column}: {value!r} is not a finite number of seconds >= 0")
    return seconds

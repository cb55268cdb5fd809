"""Reader: turn command-line inputs into `InputItem`s.

An input is a video file (local path or fsspec URL), a folder (searched
recursively for video files) or a manifest (CSV, JSONL or Parquet with a
``path`` or ``url`` column and optional ``video_id``, ``start``, ``end``,
``text``, ``license``). Problems with an input are returned as
`InputProblem`s, never dropped: the pipeline reports each one.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import fsspec

from curation.records import InputItem

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".webm", ".ogv", ".avi", ".m4v", ".mpeg", ".mpg", ".flv", ".ts"})
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl", ".parquet"})
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class InputProblem:
    """An input that could not become an `InputItem`, with the reason."""

    input: str
    reason: str
    detail: str


def read_inputs(inputs: list[str]) -> tuple[list[InputItem], list[InputProblem]]:
    """Expand files, folders and manifests into items, in a deterministic order."""
    items: list[InputItem] = []
    problems: list[InputProblem] = []
    for raw in inputs:
        is_url = "://" in raw
        path = Path(raw)
        if not is_url and path.is_dir():
            found = [_file_item(str(p)) for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES]
            items += found
            if not found:
                problems.append(
                    InputProblem(
                        raw, "no_videos", f"no file with a video extension ({', '.join(sorted(VIDEO_SUFFIXES))})"
                    )
                )
        elif Path(raw.split("?")[0]).suffix.lower() in MANIFEST_SUFFIXES:
            found, bad = _read_manifest(raw)
            items += found
            problems += bad
        elif not is_url and not path.exists():
            problems.append(InputProblem(raw, "not_found", "no such file or folder"))
        else:
            items.append(_file_item(raw))
    return _without_repeats(items, problems)


def _without_repeats(
    items: list[InputItem], problems: list[InputProblem]
) -> tuple[list[InputItem], list[InputProblem]]:
    """Keep the first of items that name the same video and window: they would give clips with the same keys."""
    first: dict[tuple[str, float | None, float | None], InputItem] = {}
    kept = []
    for item in items:
        seen = first.setdefault((item.video_id, item.start, item.end), item)
        if seen is item:
            kept.append(item)
        else:
            where = item.given or item.path
            problems.append(
                InputProblem(where, "duplicate_input", f"same video and window as {seen.given or seen.path}")
            )
    return kept, problems


def slug(text: str) -> str:
    """A key-safe version of ``text`` (letters, digits, '-' and '_'), suffixed by a hash when it had to change."""
    cleaned = _SLUG.sub("_", text).strip("_")[:48] or "clip"
    if cleaned == text:
        return cleaned
    return f"{cleaned}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def default_video_id(path: str) -> str:
    """The file's stem plus a hash of its size and first 64 KiB: stable across machines and folders."""
    digest = hashlib.sha1()
    with fsspec.open(path, "rb") as f:
        head = f.read(65536)
        digest.update(head)
        size = f.size if hasattr(f, "size") and f.size is not None else len(head)
    digest.update(str(size).encode())
    stem = Path(path.split("?")[0]).stem
    return f"{_SLUG.sub('_', stem).strip('_')[:40] or 'video'}-{digest.hexdigest()[:10]}"


def _file_item(path: str) -> InputItem:
    try:
        video_id = default_video_id(path)
    except OSError:
        # Unreadable files still become items: decoding reports them with their reason.
        video_id = slug(Path(path).stem)
    return InputItem(path=path, video_id=video_id)


def _read_manifest(manifest: str) -> tuple[list[InputItem], list[InputProblem]]:
    import pandas as pd

    suffix = Path(manifest.split("?")[0]).suffix.lower()
    try:
        with fsspec.open(manifest, "rb") as f:
            if suffix == ".csv":
                frame = pd.read_csv(f, dtype=str, keep_default_na=False)
            elif suffix == ".jsonl":
                frame = pd.read_json(f, lines=True, dtype=False)
            else:
                frame = pd.read_parquet(f)
    except Exception as exc:  # noqa: BLE001 - any parse failure is reported with its message
        return [], [InputProblem(manifest, "bad_manifest", f"{type(exc).__name__}: {exc}")]
    if "path" not in frame.columns and "url" not in frame.columns:
        return [], [InputProblem(manifest, "bad_manifest", "needs a 'path' or 'url' column")]
    base = Path(manifest).parent if "://" not in manifest else None
    items: list[InputItem] = []
    problems: list[InputProblem] = []
    for line, row in enumerate(frame.to_dict("records"), start=2 if suffix == ".csv" else 1):
        where = f"{manifest}:{line}"
        given = location = _text(row.get("path")) or _text(row.get("url"))
        if location is None:
            problems.append(InputProblem(where, "bad_manifest_row", "no path or url"))
            continue
        if base is not None and "://" not in location and not Path(location).is_absolute():
            location = str(base / location)
        try:
            start, end = _seconds(row.get("start")), _seconds(row.get("end"))
        except ValueError as exc:
            problems.append(InputProblem(where, "bad_manifest_row", str(exc)))
            continue
        if start is not None and end is not None and end <= start:
            problems.append(InputProblem(where, "bad_manifest_row", f"end {end} is not after start {start}"))
            continue
        video_id = _text(row.get("video_id"))
        if "://" not in location and not Path(location).exists():
            problems.append(InputProblem(location, "not_found", f"listed in {where}"))
            continue
        items.append(
            InputItem(
                path=location,
                video_id=slug(video_id) if video_id else _file_item(location).video_id,
                start=start,
                end=end,
                text=_text(row.get("text")),
                license=_text(row.get("license")),
                given=given,
            )
        )
    return items, problems


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _seconds(value: object) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f"negative or NaN seconds: {text!r}")
    return seconds

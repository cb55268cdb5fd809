"""Reader: turn command-line inputs into `InputItem`s.

An input is a video file (local path or fsspec URL), a folder (searched
recursively) or a manifest (CSV, JSONL or Parquet: rows naming a path, a URL
or a video id, read by `curation.manifest`).
Problems with an input are returned as `InputProblem`s, never dropped: the
pipeline writes each one to ``inputs.jsonl`` with its reason.

Folders are judged by content, not by name. Every entry under a folder ends
as an item or a problem: a file with a video suffix (`VIDEO_SUFFIXES`) is an
item (a damaged one is reported ``undecodable`` by the decoder); any other
file is probed by FFmpeg (`probe`), which turns down a file that is not
media after reading its header, and becomes an item when it holds a video
and an audio stream (``.3gp``, ``.wmv``,
``.mts``, ``.vob``, ``.mxf``, ...), else a problem (``skipped_not_media``,
``no_video_stream``, ``no_audio_stream``). Hidden files and folders (a name
starting with ``.``) are not read (``skipped_hidden``, one line per hidden
folder); symbolic links to folders are not followed. The run's own output
folder, when it lies inside an input folder, is not an input and is left
out. Anything that is not a regular file (a FIFO, a socket, a device) is
never opened (``not_a_regular_file``), and an empty file is ``empty_file``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from fsspec.implementations.local import make_path_posix

from curation.fetch import open_input
from curation.manifest import DEFAULT_URL_TEMPLATE, VIDEO_SUFFIXES, is_page, missing_columns, parse_row, read_rows
from curation.records import InputItem, InputLine
from curation.redact import redact_text

MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl", ".parquet"})
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
_NOT_REGULAR = {
    stat.S_ISDIR: "a folder where a file is expected",
    stat.S_ISFIFO: "a FIFO (named pipe), not opened",
    stat.S_ISSOCK: "a socket, not opened",
    stat.S_ISCHR: "a character device, not opened",
    stat.S_ISBLK: "a block device, not opened",
}


@dataclass(frozen=True)
class InputProblem:
    """An input that could not become an `InputItem`, with the reason."""

    input: str
    reason: str
    detail: str


def read_inputs(
    inputs: list[str], exclude: str | Path | None = None, url_template: str = DEFAULT_URL_TEMPLATE
) -> tuple[list[InputItem], list[InputProblem]]:
    """Expand files, folders and manifests into items, in a deterministic order.

    ``exclude`` is a folder left out of folder scans: the run's output folder. ``url_template`` builds the URL of a
    manifest row that names a video by id (`curation.manifest`).
    """
    items: list[InputItem] = []
    problems: list[InputProblem] = []
    skip = Path(exclude).resolve() if exclude is not None else None
    for raw in inputs:
        if "://" in raw:
            found, bad = (
                _read_manifest(raw, url_template) if _suffix(raw) in MANIFEST_SUFFIXES else ([_url_item(raw)], [])
            )
        elif Path(raw).is_dir():
            found, bad = _scan(raw, skip)
        elif (problem := _check_file(raw)) is not None:
            found, bad = [], [problem]
        elif _suffix(raw) in MANIFEST_SUFFIXES:
            found, bad = _read_manifest(raw, url_template)
        else:
            found, bad = [_file_item(raw)], []
        items += found
        problems += bad
    return _without_repeats(items, problems)


def _scan(folder: str, skip: Path | None) -> tuple[list[InputItem], list[InputProblem]]:
    """Every entry under ``folder``, in path order: an item, or a problem saying why not."""
    entries: list[tuple[Path, InputItem | InputProblem]] = []

    def unreadable(error: OSError) -> None:
        name = error.filename or folder
        entries.append((Path(name), InputProblem(name, "unreadable", f"{type(error).__name__}: {error.strerror}")))

    for parent, folders, files in os.walk(folder, onerror=unreadable):
        descend = []
        for name in folders:
            path = os.path.join(parent, name)
            if Path(path).resolve() == skip:
                continue  # this run's output: not an input, and it changes while the run goes
            if name.startswith("."):
                entries.append((Path(path), InputProblem(path, "skipped_hidden", "hidden folder, not searched")))
            elif os.path.islink(path):
                detail = "a symbolic link to a folder, not followed (name the folder itself to curate it)"
                entries.append((Path(path), InputProblem(path, "not_a_regular_file", detail)))
            else:
                descend.append(name)
        folders[:] = descend
        entries += [(Path(parent, name), _folder_entry(os.path.join(parent, name))) for name in files]
    entries.sort(key=lambda entry: entry[0])
    if not entries:
        return [], [InputProblem(folder, "no_videos", "the folder holds no file")]
    items = [entry for _, entry in entries if isinstance(entry, InputItem)]
    return items, [entry for _, entry in entries if isinstance(entry, InputProblem)]


def _folder_entry(path: str) -> InputItem | InputProblem:
    if os.path.basename(path).startswith("."):
        return InputProblem(path, "skipped_hidden", "hidden file")
    problem = _check_file(path)
    if problem is None and _suffix(path) not in VIDEO_SUFFIXES:
        problem = probe(path)
    return _file_item(path) if problem is None else problem


def _check_file(path: str) -> InputProblem | None:
    """A problem for a local path that is missing, not a regular file, or empty; None for a file to read.

    Decided from ``os.stat`` alone: a FIFO or a device is never opened (opening a FIFO blocks until a writer comes).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        detail = "a broken symbolic link" if os.path.islink(path) else "no such file or folder"
        return InputProblem(path, "not_found", detail)
    except OSError as exc:
        return InputProblem(path, "unreadable", f"{type(exc).__name__}: {exc.strerror}")
    if not stat.S_ISREG(info.st_mode):
        what = next(
            (what for test, what in _NOT_REGULAR.items() if test(info.st_mode)), "not a regular file, not opened"
        )
        return InputProblem(path, "not_a_regular_file", what)
    if info.st_size == 0:
        return InputProblem(path, "empty_file", "the file has 0 bytes")
    return None


def probe(path: str) -> InputProblem | None:
    """None when FFmpeg finds a video and an audio stream in the local file ``path``; else the problem.

    FFmpeg recognises a container from its first bytes (at most 1 MiB), so a
    file that is not media is turned down after reading its header. FFmpeg
    gets the bytes without the file's name (`_Unnamed`), so nothing is guessed
    from the suffix (by name alone it reads any ``.txt`` as an ANSI-art video)
    and no name is taken for an FFmpeg protocol.
    """
    import av

    try:
        with open(path, "rb") as handle, av.open(_Unnamed(handle), metadata_errors="ignore") as container:
            kinds = {stream.type for stream in container.streams}
            form = container.format.name
    except av.FFmpegError:
        return InputProblem(path, "skipped_not_media", "FFmpeg recognises no media container in it")
    except (OSError, ValueError, EOFError) as exc:
        return InputProblem(path, "unreadable", f"{type(exc).__name__}: {exc}")
    if not kinds & {"video", "audio"}:
        what = ", ".join(sorted(kinds)) or "no"
        return InputProblem(path, "skipped_not_media", f"read by FFmpeg as {form} with {what} streams")
    if "video" not in kinds:
        return InputProblem(path, "no_video_stream", f"read by FFmpeg as {form}, audio only")
    if "audio" not in kinds:
        return InputProblem(path, "no_audio_stream", f"read by FFmpeg as {form}, video only")
    return None


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


def as_written(text: str, path: str, shown: str) -> str:
    """``text`` with the absolute forms of the local ``path`` replaced by ``shown``, the path as the user wrote it.

    fsspec opens a local path under its absolute name, so FFmpeg's and fsspec's
    messages carry the machine's folders; ``inputs.jsonl`` is published, so they
    are put back as written.
    """
    if not text or "://" in path:
        return text
    for absolute in sorted({os.path.abspath(path), make_path_posix(path)}, key=len, reverse=True):
        text = text.replace(absolute, shown)
    return text


def input_line(
    item: InputItem,
    outcome: str,
    reason: str | None,
    detail: str,
    kept: int,
    reasons: dict[str, int],
    retryable: bool = False,
) -> InputLine:
    """One line of ``inputs.jsonl``, its paths as the user wrote them (see `as_written`), URL credentials masked."""
    shown = item.given or item.path
    return InputLine(
        input=item.recorded,
        video_id=item.video_id,
        start=item.start,
        end=item.end,
        outcome=outcome,
        reason=reason,
        detail=redact_text(as_written(detail, item.path, shown)) or None,
        clips=kept,
        clips_rejected=dict(sorted(reasons.items())),
        retryable=retryable,
    )


def problem_line(problem: InputProblem) -> InputLine:
    """The ``inputs.jsonl`` line of an input that never became an item (no video id: none was known)."""
    return input_line(InputItem(problem.input, None), "rejected", problem.reason, problem.detail, 0, {})  # type: ignore[arg-type]


def slug(text: str) -> str:
    """A key-safe version of ``text`` (letters, digits, '-' and '_'), suffixed by a hash when it had to change."""
    cleaned = _SLUG.sub("_", text).strip("_")[:48] or "clip"
    if cleaned == text:
        return cleaned
    return f"{cleaned}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


class _Unnamed:
    """A file's ``read``, ``seek`` and ``tell`` without its ``name``, which PyAV would pass on to FFmpeg."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.read, self.seek, self.tell = handle.read, handle.seek, handle.tell


def default_video_id(path: str) -> str:
    """The file's stem plus a hash: stable across machines and folders.

    A local file's hash is of its size and first 64 KiB. A URL's is of the URL,
    so that planning makes no request: the decoder fetches each input once.
    """
    stem = Path(path.split("?")[0]).stem
    digest = hashlib.sha1()
    if "://" in path:
        digest.update(path.encode())
    else:
        with open(path, "rb") as f:
            digest.update(f.read(65536))
            digest.update(str(os.fstat(f.fileno()).st_size).encode())
    return f"{_SLUG.sub('_', stem).strip('_')[:40] or 'video'}-{digest.hexdigest()[:10]}"


def _file_item(path: str) -> InputItem:
    try:
        video_id = default_video_id(path)
    except OSError:
        # Unreadable files still become items: decoding reports them with their reason.
        video_id = slug(Path(path).stem)
    return InputItem(path=path, video_id=video_id)


def _read_manifest(manifest: str, url_template: str) -> tuple[list[InputItem], list[InputProblem]]:
    try:
        with open_input(manifest) as handle:
            columns, rows = read_rows(handle, _suffix(manifest))
    except Exception as exc:  # noqa: BLE001 - any read or parse failure is reported with its message
        return [], [InputProblem(manifest, "bad_manifest", f"{type(exc).__name__}: {exc}")]
    if (missing := missing_columns(columns)) is not None:
        return [], [InputProblem(manifest, "bad_manifest", missing)]
    base = Path(manifest).parent if "://" not in manifest else None
    items: list[InputItem] = []
    problems: list[InputProblem] = []
    for line, values in rows:
        where = f"{manifest}:{line}"
        try:
            row = parse_row(values, url_template)
        except ValueError as exc:
            problems.append(InputProblem(where, "bad_manifest_row", str(exc)))
            continue
        location = row.location
        if "://" not in location:
            if base is not None and not Path(location).is_absolute():
                location = str(base / location)
            problem = _check_file(location)
            if problem is not None:
                problems.append(replace(problem, detail=f"{problem.detail}; listed in {where}"))
                continue
        items.append(
            InputItem(
                path=location,
                video_id=slug(row.video_id) if row.video_id else _file_item(location).video_id,
                start=row.start,
                end=row.end,
                text=row.text,
                license=row.license,
                given=row.location,
                ytdlp=row.ytdlp,
            )
        )
    return items, problems


def _url_item(url: str) -> InputItem:
    return InputItem(path=url, video_id=default_video_id(url), ytdlp=is_page(url))


def _suffix(path: str) -> str:
    return Path(path.split("?")[0]).suffix.lower()

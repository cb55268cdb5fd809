"""Fetch an input's window with yt-dlp (as a library, through ffmpeg), cached, retried, and every failure named.

Only the window is downloaded, widened by ``margin`` seconds each side (the config's ``max_offset``) so that
re-alignment has audio to shift, with yt-dlp's download ranges; the cut is re-encoded at the exact seconds
(``force_keyframes_at_cuts``), so that the segment's time zero is the source's second ``offset``. The format keeps
audio (`FetchOptions.format`). A failure becomes a `Rejected` with the reason `classify` gives: the site's verdicts
(``unavailable``, ``private``, ``removed``, ``age_restricted``, ``geo_blocked``, ``copyright``, ``bot_check``,
``unsupported_url``), ``timeout``, ``http_<code>``, ``no_audio_in_source``, or ``fetch_failed``. Transient ones
(timeouts, 429, 5xx, lost connections) are tried again, `FetchOptions.attempts` times in all, after an exponential
backoff with jitter (or the server's ``Retry-After``); the others never are. Fetches to one host are limited to
``per_host`` at once and start ``interval`` seconds apart, across every process that shares the cache folder
(`curation.hosts`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from curation.config import CurationConfig
from curation.crash import crash_point
from curation.decode import decode_clips
from curation.fetch_cache import HOSTS_DIR, FetchCache, Segment, default_cache_dir, segment_key
from curation.hosts import HostLimits
from curation.inputs import probe
from curation.records import Clip, InputItem, Rejected, SourceInfo
from curation.redact import redact_text

SITE_VERDICTS = (
    ("bot_check", ("not a bot",)),
    ("private", ("private video", "video is private")),
    ("age_restricted", ("confirm your age", "age-restricted", "age restricted", "inappropriate for some users")),
    ("geo_blocked", ("not available in your country", "geo restrict", "geo-restrict", "from your location")),
    ("copyright", ("copyright",)),
    ("removed", ("has been removed", "account associated with this video has been terminated")),
    ("unavailable", ("video unavailable", "video is unavailable", "no longer available", "is not available")),
    ("unsupported_url", ("unsupported url",)),
)
"""A site's refusal, by the words of yt-dlp's message (checked in this order: a copyright removal says both)."""
BOT_CHECK_ADVICE = (
    "the site asks to confirm that this is not a bot: pass --cookies FILE (cookies.txt of a signed-in browser), "
    "fetch less often (--fetch-interval, --per-host), then rerun with --retry-failed"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchOptions:
    """How segments are fetched (picklable: it travels to Ray workers). Conservative by default: be polite."""

    cache_dir: str | None = None
    """A local folder; None: `curation.fetch_cache.default_cache_dir` on the machine that fetches."""
    cache_max_bytes: int = 50 * 2**30
    max_height: int = 480
    """Resolution cap, pixels (curation writes at most ``max_side`` anyway)."""
    max_filesize: str = "500M"
    """Size cap of the source file, in yt-dlp's units; formats of unknown size are allowed."""
    attempts: int = 4
    backoff: float = 1.0
    """Seconds before the second attempt, doubled each time, times a jitter in [0.5, 1.5)."""
    max_wait: float = 60.0
    socket_timeout: float = 30.0
    per_host: int = 2
    """Fetches to one host at once, across the processes that share ``cache_dir``."""
    interval: float = 1.0
    """Seconds between the starts of two fetches to one host, across the processes that share ``cache_dir``."""
    concurrency: int = 4
    """Fetches a unit runs ahead of its decoding."""
    cookies: str | None = None
    proxy: str | None = None

    def __post_init__(self) -> None:
        for name in ("per_host", "concurrency", "attempts", "max_height"):
            if getattr(self, name) < 1:
                raise ValueError(f"fetch option {name} must be at least 1, got {getattr(self, name)}")
        for name in ("interval", "backoff", "max_wait", "socket_timeout"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"fetch option {name} must be a number of seconds >= 0, got {getattr(self, name)}")

    @property
    def format(self) -> str:
        """yt-dlp's format selection: best video and best audio under the caps, else the best file holding both."""
        caps = f"[height<=?{self.max_height}][filesize<?{self.max_filesize}]"
        return f"bv*{caps}+ba/b{caps}/bv*+ba/b"


class SegmentFetcher:
    """Fetches segments into a cache folder; its per-host limits hold for every process fetching into that folder."""

    def __init__(self, options: FetchOptions, sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self.cache = FetchCache(options.cache_dir or default_cache_dir(), options.cache_max_bytes)
        self.sleep = sleep
        self.hosts = HostLimits(self.cache.root / HOSTS_DIR, options.per_host, options.interval, sleep)

    def fetch(self, item: InputItem, margin: float) -> Segment:
        """The segment of ``item`` (from the cache, or fetched into it); `Rejected` with the reason when it fails."""
        offset = max(0.0, (item.start or 0.0) - margin)
        end = item.end + margin if item.end is not None else None
        key = segment_key(item.path, offset, end, self.options.format)
        segment = self.cache.lookup(key) or self._fetch_with_retries(item.path, key, offset, end)
        if not segment.audio:
            raise Rejected("no_audio_in_source", "the site's file has no audio stream")
        return segment

    def _fetch_with_retries(self, url: str, key: str, offset: float, end: float | None) -> Segment:
        wait = self.options.backoff
        for attempt in range(1, self.options.attempts + 1):
            try:
                with self.hosts.turn(urlsplit(url).netloc):
                    return self._download(url, key, offset, end)
            except Exception as exc:  # noqa: BLE001 - classified: every failure ends as a recorded reason
                rejected, transient, asked = classify(exc)
            if not transient or attempt == self.options.attempts:
                tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise Rejected(rejected.reason, rejected.detail + tries, rejected.retryable)
            self.sleep(min(asked if asked is not None else wait * random.uniform(0.5, 1.5), self.options.max_wait))
            wait *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _download(self, url: str, key: str, offset: float, end: float | None) -> Segment:
        import yt_dlp
        from yt_dlp.utils import download_range_func

        folder = self.cache.staging(key)
        window = {"download_ranges": download_range_func(None, [(offset, end)]), "force_keyframes_at_cuts": True}
        options = {
            "quiet": True,
            "logger": _Quiet(),
            "no_warnings": True,
            "noprogress": True,
            "noplaylist": True,
            "format": self.options.format,
            "outtmpl": {"default": str(folder / "segment.%(ext)s")},
            "socket_timeout": self.options.socket_timeout,
            "retries": 0,  # retried here, the whole segment, with backoff and only when transient
            "extractor_retries": 0,
            "external_downloader_args": {"ffmpeg_i": ["-rw_timeout", str(int(self.options.socket_timeout * 1e6))]},
            "cookiefile": self.options.cookies,
            "proxy": self.options.proxy,
            **(window if end is not None or offset > 0 else {}),
        }
        with yt_dlp.YoutubeDL({k: v for k, v in options.items() if v is not None}) as downloader:
            info = downloader.extract_info(url, download=True)
        files = [path for path in folder.iterdir() if not path.name.endswith((".part", ".ytdl"))]
        crash_point("segment_downloaded")  # downloaded, not yet in the cache: a kill leaves a staging folder
        if len(files) != 1:
            raise Rejected("fetch_failed", f"yt-dlp left {len(files)} files, expected one")
        problem = probe(str(files[0]))
        audio = problem is None
        if problem is not None and (problem.reason != "no_audio_stream" or self._source_has_audio(info)):
            detail = problem.detail if problem.reason != "no_audio_stream" else "the source has audio, the segment none"
            raise Rejected("fetch_failed", f"an incomplete download: {detail}", True)  # not kept: asked again
        about = {"url": url, "start": offset, "end": end, "format": self.options.format}
        return self.cache.store(key, files[0], Segment(str(files[0]), offset, site_info(info), audio), about)

    def _source_has_audio(self, info: dict[str, Any]) -> bool:
        """Whether the chosen formats have audio: as the site says, else as FFmpeg finds in the file's header."""
        codecs = [chosen.get("acodec") for chosen in info.get("requested_formats") or [info]]
        if any(codec not in (None, "none") for codec in codecs) or all(codec == "none" for codec in codecs):
            return any(codec not in (None, "none") for codec in codecs)
        import av

        timeout = str(int(self.options.socket_timeout * 1e6))
        try:
            with av.open(info["url"], options={"rw_timeout": timeout}, metadata_errors="ignore") as container:
                return bool(container.streams.audio)
        except (av.FFmpegError, OSError, KeyError):
            return True  # unknown: the missing audio is then blamed on the download, which is asked again


class _Quiet:
    """yt-dlp's logger: nothing on the terminal; its errors come back as exceptions and are recorded on the input."""

    def debug(self, message: str) -> None:
        pass

    warning = error = info = debug


def site_info(info: dict[str, Any]) -> SourceInfo:
    """The site's own metadata of a video, from yt-dlp's info dict (the generic extractor's title is the file's name)."""
    date = info.get("upload_date")
    iso = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if isinstance(date, str) and len(date) == 8 else None
    return SourceInfo(
        title=info.get("title"), uploader=info.get("uploader"), upload_date=iso, license=info.get("license")
    )


def classify(exc: BaseException) -> tuple[Rejected, bool, float | None]:
    """The recorded reason of a fetch failure, whether to try again now, and the wait the server asked for."""
    if isinstance(exc, Rejected):
        return exc, exc.retryable, None
    message = redact_text(_message(exc))
    for cause in _causes(exc):
        status = getattr(cause, "status", None)
        if type(cause).__name__ == "HTTPError" and isinstance(status, int):
            transient = status in RETRY_STATUSES
            return Rejected(f"http_{status}", message, transient), transient, _retry_after(cause)
    lowered = message.lower()
    if any(isinstance(cause, TimeoutError) for cause in _causes(exc)) or "timed out" in lowered:
        return Rejected("timeout", message, True), True, None
    for reason, words in SITE_VERDICTS:
        if any(word in lowered for word in words):
            if reason == "bot_check":  # retryable later, with cookies or slower; asking again now makes it worse
                return Rejected(reason, f"{message}; {BOT_CHECK_ADVICE}", True), False, None
            return Rejected(reason, message), False, None
    lost = any(isinstance(cause, ConnectionError) for cause in _causes(exc)) or type(exc).__name__ == "TransportError"
    if "ffmpeg exited with code" in lowered:  # ffmpeg, cutting the window, says no more than its exit code
        detail = f"{message}: ffmpeg could not cut the window (a lost or stalled connection, or a damaged file)"
        return Rejected("fetch_failed", detail, True), True, None
    return Rejected("fetch_failed", message, lost), lost, None


def _message(exc: BaseException) -> str:
    text = str(exc).removeprefix("ERROR: ").strip()
    return text or type(exc).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it: yt-dlp's ``exc_info`` and ``cause``, and Python's chain."""
    found: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if isinstance(current, BaseException) and all(current is not seen for seen in found):
            found.append(current)
            exc_info = getattr(current, "exc_info", None)
            todo += [getattr(current, "cause", None), current.__cause__, current.__context__]
            todo += [exc_info[1]] if isinstance(exc_info, tuple) and len(exc_info) > 1 else []
    return found


def _retry_after(error: BaseException) -> float | None:
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    try:
        return max(0.0, float(headers.get("Retry-After")))
    except (TypeError, ValueError):
        return None


@cache
def fetcher_for(options: FetchOptions) -> SegmentFetcher:
    """The process's fetcher for ``options``, kept across units: its count of the cache's bytes is not redone per unit
    (the per-host limits live in the cache folder, shared by every fetcher of it)."""
    return SegmentFetcher(options)


@contextmanager
def prefetch(
    items: tuple[InputItem, ...], options: FetchOptions, margin: float
) -> Iterator[dict[int, Future[Segment]]]:
    """Start fetching the segments of ``items`` fetched with yt-dlp, ``options.concurrency`` at a time, by position.

    Fetching is I/O-bound: it runs ahead, in threads, while the unit decodes and analyses the inputs before.
    """
    fetcher = fetcher_for(options)
    with ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="fetch") as pool:
        try:
            yield {i: pool.submit(fetcher.fetch, item, margin) for i, item in enumerate(items) if item.ytdlp}
        finally:
            pool.shutdown(cancel_futures=True)


def segment_clips(item: InputItem, pending: Future[Segment], config: CurationConfig) -> Iterator[Clip]:
    """The clips of ``item`` from its segment, on the source's time axis: ``source.start`` is the row's ``start``."""
    segment = pending.result()  # a failed fetch raises its Rejected here (in the unit's decoding thread)
    local = replace(
        item,
        path=segment.path,
        start=None if item.start is None else item.start - segment.offset,
        end=None if item.end is None else item.end - segment.offset,
        ytdlp=False,
    )
    try:
        for clip in decode_clips(local, config):
            start, end = round(clip.start + segment.offset, 6), round(clip.end + segment.offset, 6)
            yield replace(clip, item=item, start=start, end=end, site=segment.site)
    except Rejected as rejected:  # name the input, not the cache's file
        detail = rejected.detail.replace(segment.path, item.recorded)
        raise Rejected(rejected.reason, detail, rejected.retryable) from rejected

"""Decoder: one input file → `Clip`s, with PyAV.

Audio and video share one time axis whose zero is the first video frame.
Stream start times are honoured: an audio stream that starts 0.4 s after the
video is placed 0.4 s late (leading silence), exactly as a player would
present it, so that misaligned sources are measured as misaligned instead of
being silently "fixed" by concatenating samples from zero.

Decoding streams through the file once and emits each clip as soon as both
streams have passed its end, so memory is bounded by one clip, whatever the
input's length. Each clip records where it came from (`FrameSource`), so that
`source_frames` can decode its frames again at the source's resolution, one at
a time: the lip path reads a small face there (`curation.models.faces`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction

import av
import numpy as np

from acav1m_hf.schema import AUDIO_SAMPLE_RATE
from curation import fetch
from curation.config import CurationConfig
from curation.fetch import open_input
from curation.records import Clip, FrameSource, InputItem, Rejected

SR = AUDIO_SAMPLE_RATE


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Frame size for the written video: longest side ``max_side`` at most, never upscaled, even numbers (H.264)."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def decode_clips(item: InputItem, config: CurationConfig) -> Iterator[Clip]:
    """Yield the clips of ``item``; raise `Rejected` for an input that has none to give."""
    try:
        with open_input(item.path) as handle, av.open(handle, metadata_errors="ignore") as container:
            yield from _decode(container, item, config)
    except Rejected:
        raise
    except Exception as exc:
        if not isinstance(exc, av.FFmpegError | OSError | ValueError | EOFError) and not fetch.from_network(exc):
            raise  # a defect, not a property of the input: the unit fails and says so
        raise _rejection(item.path, exc) from exc


def source_frames(source: FrameSource, fps: float, count: int) -> Iterator[np.ndarray]:
    """The ``count`` frames of a clip from ``source`` at its own resolution, slot for slot as `decode_clips` cut them.

    One frame is decoded and converted at a time, from the keyframe before the clip: memory is one source frame.
    A container that cannot seek, or whose seek lands after the clip's first frame, is read from its start instead.
    """
    last = source.first + count - 1
    for seek in (source.first > 0, False):
        with open_input(source.path) as handle, av.open(handle, metadata_errors="ignore") as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            if seek and not _seek(container, video, source.t0 + (source.first - 1) / fps):
                continue
            slotted = _nearest_per_slot(container.decode(video), source.t0, fps)
            head = next(slotted, None)
            if seek and (head is None or head[0] > source.first):
                continue
            window = itertools.takewhile(lambda pair: pair[0] <= last, itertools.chain([head] if head else [], slotted))
            arrays = ((slot, frame.to_ndarray(format="rgb24")) for slot, frame in window if slot >= source.first)
            yield from _fill(arrays, source.first, count, source.path)
            return


def _seek(container: av.container.InputContainer, video: av.VideoStream, time: float) -> bool:
    """Seek ``container`` to the keyframe at or before ``time`` (seconds); False where the container cannot."""
    try:
        container.seek(max(0, math.floor(time / video.time_base)), stream=video)
    except av.FFmpegError:
        return False
    return True


class _NearestPerSlot:
    """Picks, for each frame slot since ``t0`` at ``fps``, the frame shown nearest the slot's time.

    Frames come in time order; one that lands in the last picked slot replaces the picked frame when it is nearer
    (a source faster than ``fps``), so each kept frame is within half a source period of its slot's time, early as
    often as late. Taking the first frame of each period instead put the picture up to a period early: the lip path
    read that as audio late (docs/alignment.md). One rule for both readers of a source, the clip cutter
    (`_Timeline`, fed frame by frame) and `source_frames` (a generator), so that they agree slot for slot.
    """

    def __init__(self, t0: float, fps: float) -> None:
        self.t0, self.fps = t0, fps
        self.last = -1
        """The slot of the last frame picked (-1: none yet)."""
        self.distance = math.inf
        """How far that frame is from its slot's time, in slot periods."""

    def pick(self, time: float) -> int | None:
        """The slot of a frame shown at container ``time`` if it is the nearest to that slot so far, else None."""
        position = (time - self.t0) * self.fps
        slot = int(math.floor(position + 0.5))
        distance = abs(position - slot)
        if slot < self.last or (slot == self.last and distance >= self.distance - 1e-9):
            return None
        self.last, self.distance = slot, distance
        return slot


def _nearest_per_slot(frames: Iterable[av.VideoFrame], t0: float, fps: float) -> Iterator[tuple[int, av.VideoFrame]]:
    """``(slot, frame)`` for each frame `_NearestPerSlot` picks; a slot comes again when a nearer frame replaces it."""
    slots = _NearestPerSlot(t0, fps)
    for frame in frames:
        if frame.time is not None and (slot := slots.pick(frame.time)) is not None:
            yield slot, frame


def _fill(slotted: Iterable[tuple[int, np.ndarray]], first: int, count: int, path: str) -> Iterator[np.ndarray]:
    """For each slot of ``first .. first + count - 1``, its frame, else the one before it in the window, else the
    first one after (a window that starts between frames); ``slotted`` holds slots from ``first`` on, in order (a
    slot that comes twice: the later frame, the nearer)."""
    upcoming = iter(slotted)
    following = next(upcoming, None)
    previous = None
    for slot in range(first, first + count):
        while following is not None and following[0] <= slot:
            previous, following = following[1], next(upcoming, None)
        if previous is None:
            if following is None:
                raise ValueError(f"{path}: no video frame at or after slot {slot}")
            previous = following[1]
        yield previous


def _rejection(path: str, exc: BaseException) -> Rejected:
    """Why reading ``path`` failed (gone, fetch failed, empty or undecodable), and whether a retry may help."""
    retryable = fetch.is_transient(exc)
    status = fetch.http_status(exc)
    if status in fetch.GONE_STATUSES:
        return Rejected("not_found", f"HTTP {status}")
    if status is not None:
        tries = f" after {fetch.ATTEMPTS} attempts" if retryable else ""
        return Rejected("fetch_failed", f"HTTP {status}{tries}", retryable)
    if _size(path) == 0:
        return Rejected("empty_file", "the file has 0 bytes")
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, FileNotFoundError) and not retryable:
        return Rejected("not_found", message)
    return Rejected("fetch_failed" if fetch.from_network(exc) else "undecodable", message, retryable)


def _size(path: str) -> int | None:
    """The size of ``path`` in bytes, or None when it cannot be known (asked only after a failure)."""
    try:
        opened = open_input(path)
        return opened.fs.size(opened.path)
    except Exception:  # noqa: BLE001 - the size only refines the reason of a failure already reported
        return None


def _decode(container: av.container.InputContainer, item: InputItem, config: CurationConfig) -> Iterator[Clip]:
    if not container.streams.video:
        raise Rejected("no_video_stream")
    if not container.streams.audio:
        raise Rejected("no_audio_stream")
    video, audio = container.streams.video[0], container.streams.audio[0]
    video.thread_type = "AUTO"
    # The frames' own rate (FFmpeg's guess from their timestamps), not the average (count over duration): a steady
    # 12-fps stream whose last frame lasts longer averages 11.94, and slots at that rate drift a period off its frames.
    # A variable-rate source (a screen recording that mostly holds still) is read at its guessed rate, up to
    # max_fps, so its held frames fill several slots.
    rate = video.guessed_rate or video.average_rate or Fraction(25)
    fps = float(min(Fraction(rate), Fraction(config.max_fps).limit_denominator(1000)))
    timeline = _Timeline(item, config, fps, (video.codec_context.width, video.codec_context.height))
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
    for packet in container.demux(video, audio):
        try:
            frames = packet.decode()
        except av.InvalidDataError:
            continue  # a damaged packet: the frames around it still decode
        for frame in frames:
            if packet.stream is video:
                timeline.add_video(frame)
            else:
                for out in resampler.resample(frame):
                    timeline.add_audio(out, frame.time)
        yield from timeline.ready_clips()
        if not timeline.wants_more():
            break  # the window or the clip limit is reached: the rest of the file is never decoded
    for out in resampler.resample(None):
        timeline.add_audio(out, None)
    yield from timeline.ready_clips(flush=True)
    if timeline.emitted == 0:
        raise Rejected(*timeline.why_empty())


class _Timeline:
    """Buffers decoded frames and samples and cuts them into clip windows."""

    def __init__(self, item: InputItem, config: CurationConfig, fps: float, source_size: tuple[int, int]) -> None:
        self.item, self.config, self.fps, self.source_size = item, config, fps, source_size
        self.size = output_size(*source_size, config.max_side)
        self.reformatter = av.video.reformatter.VideoReformatter()
        """One swscale context for the whole input: ``frame.to_ndarray(width=...)`` would build one per frame."""
        self.slots: _NearestPerSlot | None = None  # from the first video frame on, which sets t0
        self.frames: dict[int, np.ndarray] = {}  # frame slot (since t0, at fps) -> RGB
        self.audio_chunks: list[np.ndarray] = []
        self.audio_start: float | None = None  # container time of the first audio sample
        self.audio_dropped = 0  # samples already released from the head of the buffer
        self.audio_end = -math.inf
        self.video_end = -math.inf
        self.index = 0
        self.emitted = 0
        self.clip_start = item.start or 0.0

    @property
    def t0(self) -> float | None:
        """Time of the first video frame, the clip time axis' zero; None before it."""
        return None if self.slots is None else self.slots.t0

    # ---------------------------------------------------------------- input
    def add_video(self, frame: av.VideoFrame) -> None:
        if frame.time is None:
            return
        if self.slots is None:
            self.slots = _NearestPerSlot(frame.time, self.fps)
        t = frame.time - self.slots.t0
        self.video_end = max(self.video_end, t + 1.0 / self.fps)
        if t < self.clip_start - 1.0 / self.fps:
            return  # before the window (an input's start): not converted
        if (slot := self.slots.pick(frame.time)) is not None:
            image = self.reformatter.reformat(frame, width=self.size[0], height=self.size[1], format="rgb24")
            self.frames[slot] = image.to_ndarray()

    def add_audio(self, frame: av.AudioFrame, source_time: float | None) -> None:
        if self.audio_start is None:
            if source_time is None:
                return
            self.audio_start = source_time
        samples = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        self.audio_chunks.append(samples)
        total = self.audio_dropped + sum(len(c) for c in self.audio_chunks)
        self.audio_end = self.audio_start + total / SR

    # ---------------------------------------------------------------- output
    def _end_bound(self) -> float:
        return self.item.end if self.item.end is not None else math.inf

    def ready_clips(self, flush: bool = False) -> Iterator[Clip]:
        while self.slots is not None and self.wants_more():
            start = self.clip_start
            end = min(start + self.config.clip_seconds, self._end_bound())
            media_end = min(self.video_end, self._audio_end_rel())
            first, count = self._window(start, end)
            # Complete once a frame after the window has come (the window's last slot may still get its own frame,
            # from a source faster than ``fps``) and the audio has passed its end.
            if not flush and (self.slots.last < first + count or self._audio_end_rel() < end):
                return
            end = min(end, media_end) if flush else end
            if end - start < self.config.min_clip_seconds:
                self.clip_start = math.inf
                return
            yield self._cut(start, end)
            self.clip_start = end

    def wants_more(self) -> bool:
        """Whether another clip can still be cut (the input's window and clip limit are not exhausted)."""
        limit = self.config.max_clips_per_input
        return self.clip_start < self._end_bound() and (limit is None or self.emitted < limit)

    def _audio_end_rel(self) -> float:
        return -math.inf if self.audio_start is None or self.t0 is None else self.audio_end - self.t0

    def _window(self, start: float, end: float) -> tuple[int, int]:
        """The first frame slot of the clip ``start``-``end`` and its number of frames."""
        return int(math.floor(start * self.fps + 1e-6)), max(1, int(round((end - start) * self.fps)))

    def _cut(self, start: float, end: float) -> Clip:
        first, count = self._window(start, end)
        slotted = [(slot, self.frames[slot]) for slot in sorted(self.frames) if slot >= first]
        frames = list(_fill(slotted, first, count, self.item.path))
        for slot in [s for s in self.frames if s < first + count - 1]:
            del self.frames[slot]
        audio = self._audio_window(start, end)
        self.index += 1
        self.emitted += 1
        return Clip(
            item=self.item,
            index=self.index - 1,
            start=round(start, 6),
            end=round(end, 6),
            frames=np.stack(frames),
            fps=self.fps,
            audio=audio,
            audio_late=round((self.audio_start or 0.0) - (self.t0 or 0.0), 6),
            source=FrameSource(self.item.path, self.t0 or 0.0, first, *self.source_size),
        )

    def _audio_window(self, start: float, end: float) -> np.ndarray:
        """Samples of [start, end) on the video time axis; zeros where the audio stream has none."""
        assert self.audio_start is not None and self.t0 is not None
        buffer = np.concatenate(self.audio_chunks) if self.audio_chunks else np.zeros(0, np.float32)
        n = int(round((end - start) * SR))
        offset = int(round((start + self.t0 - self.audio_start) * SR)) - self.audio_dropped
        out = np.zeros(n, np.float32)
        lo, hi = max(offset, 0), min(offset + n, len(buffer))
        if hi > lo:
            out[lo - offset : hi - offset] = buffer[lo:hi]
        keep_from = max(0, min(offset + n, len(buffer)))
        self.audio_chunks = [buffer[keep_from:]]
        self.audio_dropped += keep_from
        return out

    def why_empty(self) -> tuple[str, str]:
        if self.t0 is None:
            return "undecodable", "no video frame could be decoded"
        if self.audio_start is None:
            return "undecodable", "no audio frame could be decoded"
        duration = min(self.video_end, self._audio_end_rel())
        if self.item.start is not None and self.item.start >= duration:
            return "too_short", f"start {self.item.start} s is beyond the media's end at {max(duration, 0):.2f} s"
        return "too_short", f"{max(duration, 0):.2f} s of audio and video, need {self.config.min_clip_seconds} s"

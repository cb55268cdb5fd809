"""Decoding of the schema's members: bytes from `acav1m_hf.streaming.reader` to tensors, arrays and text.

Decoding is ours, not webdataset's ``.decode()``, which maps ``.pyd``/``.pickle`` to ``pickle.loads`` and ``.pth``
to ``torch.load(weights_only=False)``: each member of `acav1m_hf.schema.MEMBERS` has one decoder here, and none of
them can run code. A sample that fails (a member that does not decode, a required member missing, one the reader
refused) raises naming its shard and key, or is skipped and counted (`OnError`).
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from webdataset.pipeline import PipelineStage

from acav1m_hf.schema import AUDIO_SAMPLE_RATE, MEMBER_EXTENSIONS, MEMBERS

logger = logging.getLogger("acav1m_hf.streaming")  # the package's name, which the README gives

_REQUIRED = tuple(m.extension for m in MEMBERS if m.required)
IDENTITY = ("__key__", "__url__")
"""The two entries of a sample that are not members: its key and the URL of its shard."""


def decode_audio(data: bytes, seconds: float | None = None) -> torch.Tensor:
    """A FLAC member as float32 mono at 16 kHz; cropped or zero-padded to ``seconds`` when given.

    The schema says ``flac`` is 16 kHz mono, so another rate is an error rather than a silent resample.
    """
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    if rate != AUDIO_SAMPLE_RATE:
        raise ValueError(f"flac member at {rate} Hz; the schema says {AUDIO_SAMPLE_RATE} Hz")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if seconds is not None:
        n = int(round(seconds * AUDIO_SAMPLE_RATE))
        mono = np.pad(mono[:n], (0, max(0, n - len(mono))))
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))


def _target_size(
    width: int, height: int, size: int | tuple[int, int] | None
) -> tuple[int, int, tuple[int, int] | None]:
    """Scaled (width, height) and the final (h, w) of a center crop, if any."""
    if size is None:
        return width, height, None
    if isinstance(size, int):
        # shorter side to `size`, then a center square: the usual training view, aspect kept
        scale = size / min(width, height)
        return max(size, round(width * scale)), max(size, round(height * scale)), (size, size)
    h, w = size
    return int(w), int(h), None


def decode_video(
    data: bytes,
    fps: float = 8.0,
    size: int | tuple[int, int] | None = 224,
    max_frames: int | None = None,
) -> torch.Tensor:
    """Frames of an mp4 member as uint8 ``T x C x H x W``, sampled at ``fps`` with PyAV.

    Frame ``k`` is the last decoded frame shown at or before ``k / fps`` seconds
    (times counted from the first frame), for every ``k / fps`` before the end
    of the video, so ``T = ceil(duration * fps)``. ``size`` as an int scales the
    shorter side to it and crops the center square; ``(H, W)`` resizes exactly;
    ``None`` keeps the native size. Only the frames that are kept are converted
    to RGB (swscale does the scaling).
    """
    import av

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames: list[np.ndarray] = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        width, height, crop = _target_size(stream.codec_context.width, stream.codec_context.height, size)
        origin: float | None = None
        previous: Any = None
        previous_rgb: np.ndarray | None = None
        last_time = 0.0
        step = 1.0 / fps
        k = 0

        # One converter for the whole clip: frame.reformat() builds a new swscale context per frame, which costs more
        # than the conversion itself (bench/read_bench.py). One thread in a DataLoader worker, where the workers
        # already use the cores.
        reformatter = av.video.reformatter.VideoReformatter()
        threads = 1 if torch.utils.data.get_worker_info() is not None else None

        def rgb(frame: Any) -> np.ndarray:
            array = reformatter.reformat(
                frame, width=width, height=height, format="rgb24", threads=threads
            ).to_ndarray()
            if crop is not None:
                top, left = (array.shape[0] - crop[0]) // 2, (array.shape[1] - crop[1]) // 2
                array = array[top : top + crop[0], left : left + crop[1]]
            return array

        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if origin is None:
                origin = frame.time
            t = frame.time - origin
            while k * step < t - 1e-6 and previous is not None and (max_frames is None or k < max_frames):
                if previous_rgb is None:
                    previous_rgb = rgb(previous)
                frames.append(previous_rgb)
                k += 1
            previous, previous_rgb, last_time = frame, None, t
            if max_frames is not None and k >= max_frames:
                break
        if previous is not None:
            rate = stream.average_rate or stream.guessed_rate
            end = last_time + (1.0 / float(rate) if rate else step)  # the last frame lasts one frame period
            while k * step < end - 1e-6 and (max_frames is None or k < max_frames):
                if previous_rgb is None:
                    previous_rgb = rgb(previous)
                frames.append(previous_rgb)
                k += 1
    if not frames:
        raise ValueError("mp4 member has no decodable video frames")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def decode_image(data: bytes, mode: str) -> np.ndarray:
    """A jpg/png member as a uint8 array (``RGB``: H x W x 3, ``L``: H x W)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert(mode), dtype=np.uint8)


def decode_npy(data: bytes) -> np.ndarray:
    """An npy member; ``allow_pickle=False`` so an object array cannot run code."""
    return np.load(io.BytesIO(data), allow_pickle=False)


class SampleDecoder:
    """Decode the schema's members of one raw webdataset sample; a class so DataLoader workers can pickle it."""

    def __init__(
        self,
        fps: float = 8.0,
        size: int | tuple[int, int] | None = 224,
        audio_seconds: float | None = None,
        max_frames: int | None = None,
        video: bool = True,
    ) -> None:
        self.fps = fps
        self.size = size
        self.audio_seconds = audio_seconds
        self.max_frames = max_frames
        self.video = video

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {k: sample.get(k) for k in IDENTITY}
        key = sample.get("__key__")
        for ext in MEMBER_EXTENSIONS:
            data = sample.get(ext)
            try:
                out[ext] = None if data is None else self._decode(ext, data)
            except Exception as exc:
                raise ValueError(f"{key}.{ext} in {sample.get('__url__')}: cannot decode ({exc})") from exc
        return out

    def _decode(self, ext: str, data: bytes) -> Any:
        if ext == "mp4":
            return decode_video(data, self.fps, self.size, self.max_frames) if self.video else data
        if ext == "flac":
            return decode_audio(data, self.audio_seconds)
        if ext == "json":
            return json.loads(data)
        if ext == "txt":
            return data.decode("utf-8")
        if ext == "jpg":
            return decode_image(data, "RGB")
        if ext == "mask.png":
            return decode_image(data, "L")
        if ext == "npy":
            return decode_npy(data)
        raise AssertionError(f"no decoder for schema member {ext}")  # MEMBER_EXTENSIONS grew: add one


def raw_members(sample: dict[str, Any]) -> dict[str, Any]:
    """``decode=False``: the schema's members as the tar's bytes (no copies), absent optional ones as None."""
    return {k: sample.get(k) for k in (*IDENTITY, *MEMBER_EXTENSIONS)}


def frame_times(num_frames: int, fps: float) -> torch.Tensor:
    """Timestamps (seconds from the clip start) of the frames `decode_video` returns, for aligning with audio."""
    return torch.arange(num_frames, dtype=torch.float64) / fps


def _checked(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample, or a ValueError naming its shard and key if the reader refused it or a required member is missing."""
    problem = sample.get("__error__")
    missing = [ext for ext in _REQUIRED if sample.get(ext) is None]
    if problem is None and missing:
        problem = f"required member{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing"
    if problem is not None:
        raise ValueError(f"{sample['__url__']}: sample {sample['__key__']!r}: {problem}")
    return sample


class OnError:
    """What `stream` does with a bad sample: ``"raise"`` its error (naming shard and key), or ``"skip"`` it.

    A skip logs a warning (logger ``acav1m_hf.streaming``) and adds one to a
    ``multiprocessing.Value``. The Value is made in the spawn context, which fork, spawn and forkserver DataLoader
    workers can all share, so the main process's `ShardStream.skipped` adds up the skips of every worker.
    """

    def __init__(self, mode: str) -> None:
        if mode not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {mode!r}")
        self.mode = mode
        self.count = multiprocessing.get_context("spawn").Value("q", 0) if mode == "skip" else None

    def __call__(self, exc: Exception) -> None:
        if self.count is None:
            raise exc
        logger.warning("skipped a sample: %s", exc)
        with self.count.get_lock():
            self.count.value += 1


class DecodeSamples(PipelineStage):
    """Check (`_checked`) and decode each sample; a bad one goes to `OnError`."""

    def __init__(self, decoder: Callable[[dict[str, Any]], dict[str, Any]], on_error: OnError) -> None:
        self.decoder = decoder
        self.on_error = on_error

    def run(self, src: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for sample in src:
            try:
                out = self.decoder(_checked(sample))
            except Exception as exc:
                self.on_error(exc)
                continue
            yield out

"""Stream ACAV-1M shards into PyTorch with webdataset, decoding only what the schema declares.

`stream` returns a ``torch.utils.data.IterableDataset`` (a ``wds.WebDataset``)
for training loops that want tensors, not ``datasets`` objects:

* shards are split by node (``RANK``/``WORLD_SIZE`` or ``torch.distributed``)
  and then by DataLoader worker, so every sample is read exactly once per
  epoch when the shard count is a multiple of ``world_size * num_workers``
  (otherwise some workers read more, none reads a sample twice);
* shards and samples are shuffled deterministically from ``seed`` and the epoch
  (`ShardStream.set_epoch`);
* decoding is *ours*: webdataset's ``.decode()`` maps ``.pyd``/``.pickle`` to
  ``pickle.loads`` and ``.pth`` to ``torch.load(weights_only=False)``, so a
  shard from an untrusted mirror could run code. Here only the members of
  `acav1m_hf.schema.MEMBERS` are read from the tar at all; anything else is
  skipped unread (or refused with ``unknown="error"``).

Decoded samples are dicts keyed like the ``datasets`` columns: ``mp4`` holds
the frames (uint8 ``T x C x H x W`` at ``fps`` and ``size``; the mp4's own
audio track is not decoded, ``flac`` is the same audio at 16 kHz), ``flac``
float32 mono at 16 kHz, ``json`` a dict, ``txt`` a str, ``jpg`` uint8
``H x W x 3``, ``mask.png`` uint8 ``H x W``, ``npy`` a float32 array. An
optional member that a sample lacks is ``None``. `collate` batches them.
"""

from __future__ import annotations

import io
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import webdataset as wds
    from webdataset.pipeline import PipelineStage
except ImportError as exc:  # pragma: no cover - exercised only without the torch extra
    raise ImportError("acav1m_hf.streaming needs torch and webdataset: pip install 'acav1m[torch]'") from exc

from acav1m_hf.release import list_shards
from acav1m_hf.schema import AUDIO_SAMPLE_RATE, MEMBER_EXTENSIONS, SPLITS

_MEMBERS = frozenset(MEMBER_EXTENSIONS)
_IDENTITY = ("__key__", "__url__")


# --------------------------------------------------------------------------- member decoders


def member_extension(name: str) -> str | None:
    """The member extension of a tar member name (everything after the first dot of the basename), lowercased.

    The same split as webdataset's and ``datasets``' ``base_plus_ext``: ``a/s001.mask.png`` -> ``mask.png``.
    """
    base = name.rsplit("/", 1)[-1]
    if "." not in base:
        return None
    return base.split(".", 1)[1].lower()


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
        out: dict[str, Any] = {k: sample.get(k) for k in _IDENTITY}
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


def _raw(sample: dict[str, Any]) -> dict[str, Any]:
    """``decode=False``: the schema's members as the tar's bytes (no copies), absent optional ones as None."""
    return {k: sample.get(k) for k in (*_IDENTITY, *MEMBER_EXTENSIONS)}


class _SelectMembers:
    """``select_files`` predicate: only schema members are read from the tar; others are skipped unread or refused."""

    def __init__(self, unknown: str) -> None:
        if unknown not in ("skip", "error"):
            raise ValueError(f"unknown must be 'skip' or 'error', got {unknown!r}")
        self.unknown = unknown

    def __call__(self, name: str) -> bool:
        if member_extension(name) in _MEMBERS:
            return True
        if self.unknown == "error":
            raise ValueError(f"{name}: not an ACAV-1M member (expected one of {', '.join(MEMBER_EXTENSIONS)})")
        return False


# --------------------------------------------------------------------------- shuffling


class _SeededShuffle(PipelineStage):
    """Sample shuffle buffer seeded from (seed, epoch, rank, worker).

    webdataset's ``shuffle(seed=...)`` replays the same order every epoch and in
    every worker; this one changes with the epoch and differs per worker.
    """

    def __init__(self, bufsize: int, seed: int) -> None:
        self.bufsize = bufsize
        self.seed = seed
        self.epoch = -1

    def run(self, src: Iterable[Any]) -> Iterator[Any]:
        self.epoch += 1
        rank, _, worker, _ = wds.utils.pytorch_worker_info()
        rng = random.Random(f"{self.seed}/{self.epoch}/{rank}/{worker}")
        buffer: list[Any] = []
        for sample in src:
            if len(buffer) < self.bufsize:
                buffer.append(sample)
                continue
            i = rng.randrange(len(buffer))
            buffer[i], sample = sample, buffer[i]
            yield sample
        rng.shuffle(buffer)
        yield from buffer


class ShardStream(wds.WebDataset):
    """``wds.WebDataset`` with `set_epoch`, so shuffles differ per epoch with non-persistent DataLoader workers."""

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use ``epoch`` (call before each epoch, as with ``DistributedSampler``)."""
        for stage in self.pipeline:
            if isinstance(stage, (_SeededShuffle, wds.filters.detshuffle)):
                stage.epoch = epoch - 1


# --------------------------------------------------------------------------- the stream


def resolve_shards(
    urls_or_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], split: str = "train"
) -> str | list[str]:
    """Shard URLs from a release folder (its ``split`` shards), a list of paths/URLs, or one path/URL/brace pattern."""
    if isinstance(urls_or_dir, (str, os.PathLike)) and Path(urls_or_dir).is_dir():
        shards = list_shards(urls_or_dir)
        if split not in shards:
            have = ", ".join(shards) or "none"
            raise ValueError(
                f"no {split!r} shards in {os.fspath(urls_or_dir)}/data (splits with shards: {have}; schema splits: {', '.join(SPLITS)})"
            )
        return [str(p) for p in shards[split]]
    if isinstance(urls_or_dir, (str, os.PathLike)):
        return os.fspath(urls_or_dir)
    urls = [os.fspath(u) for u in urls_or_dir]
    if not urls:
        raise ValueError("no shards given")
    return urls


def stream(
    urls_or_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    split: str = "train",
    decode: bool = True,
    fps: float = 8.0,
    size: int | tuple[int, int] | None = 224,
    shuffle: int = 0,
    seed: int = 0,
    audio_seconds: float | None = None,
    max_frames: int | None = None,
    video: bool = True,
    unknown: str = "skip",
    handler: Callable[[Exception], bool] = wds.reraise_exception,
) -> ShardStream:
    """A PyTorch ``IterableDataset`` over ACAV-1M shards (see the module docstring for what a sample holds).

    ``urls_or_dir``: a release folder (its ``split`` shards), a list of shard
    paths/URLs, or one path/URL/brace pattern (``data/train-{00000..00003}.tar``).
    ``shuffle``: sample buffer size (0: shards and samples in order); shards are
    shuffled too when it is positive. ``decode=False`` yields the members' raw
    bytes (the fast path for re-sharding or custom decoding); ``video=False``
    decodes everything but keeps ``mp4`` as bytes. ``unknown``: what to do with
    a member outside the schema (``"skip"`` it unread, or ``"error"``).
    ``handler``: webdataset's exception policy (``wds.warn_and_continue`` skips
    a sample that fails to decode).

    Splitting: by node (``wds.split_by_node``) and by worker
    (``wds.split_by_worker``), whole shards at a time; give at least
    ``world_size * num_workers`` shards or some workers get none
    (``empty_check=False`` lets them finish empty).
    """
    urls = resolve_shards(urls_or_dir, split)
    dataset = ShardStream(
        urls,
        handler=handler,
        nodesplitter=wds.split_by_node,
        workersplitter=wds.split_by_worker,
        shardshuffle=(len(urls) if isinstance(urls, list) else 100) if shuffle > 0 else False,
        detshuffle=True,
        seed=seed,
        select_files=_SelectMembers(unknown),
        empty_check=False,
    )
    if shuffle > 0:
        dataset = dataset.compose(_SeededShuffle(shuffle, seed))
    mapper: Callable[[dict[str, Any]], dict[str, Any]] = (
        SampleDecoder(fps=fps, size=size, audio_seconds=audio_seconds, max_frames=max_frames, video=video)
        if decode
        else _raw
    )
    return dataset.map(mapper, handler=handler)


# --------------------------------------------------------------------------- batching


def _pad_stack(tensors: list[torch.Tensor | None], what: str, keys: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack along a new batch dim, zero-padding dim 0 to the longest; a missing tensor is all padding (length 0)."""
    present = [t for t in tensors if t is not None]
    trailing = {tuple(t.shape[1:]) for t in present}
    if len(trailing) > 1:
        raise ValueError(
            f"collate: {what} shapes differ beyond the first dim ({sorted(trailing)}) in {keys}; pass size= to stream()"
        )
    shape = trailing.pop() if trailing else ()
    lengths = torch.tensor([0 if t is None else t.shape[0] for t in tensors], dtype=torch.int64)
    dtype = present[0].dtype if present else torch.float32
    out = torch.zeros((len(tensors), int(lengths.max()) if len(lengths) else 0, *shape), dtype=dtype)
    for i, t in enumerate(tensors):
        if t is not None:
            out[i, : t.shape[0]] = t
    return out, lengths


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch decoded samples for a DataLoader (``DataLoader(stream(...), batch_size=8, collate_fn=collate)``).

    ``flac`` becomes ``B x N`` float32 zero-padded to the longest clip, with
    ``flac_lengths``; ``mp4`` frames become ``B x T x C x H x W`` uint8 padded in
    T, with ``mp4_lengths`` (frames must share H x W: use ``size``). ``jpg``
    keyframes are stacked (``B x H x W x 3``) when they share a shape, else a
    list. Everything else (``json``, ``txt``, ``mask.png``, ``npy``, keys) stays
    a list, since clips may lack them. Raw (``decode=False``) members stay lists.
    """
    if not batch:
        raise ValueError("collate: empty batch")
    keys = [s.get("__key__") for s in batch]
    out: dict[str, Any] = {name: [s.get(name) for s in batch] for name in batch[0]}
    for name, lengths_name in (("flac", "flac_lengths"), ("mp4", "mp4_lengths")):
        values = out.get(name)
        if (
            values
            and all(v is None or isinstance(v, torch.Tensor) for v in values)
            and any(v is not None for v in values)
        ):
            out[name], out[lengths_name] = _pad_stack(values, name, keys)
    images = out.get("jpg")
    if images and all(isinstance(v, np.ndarray) for v in images) and len({v.shape for v in images}) == 1:
        out["jpg"] = torch.from_numpy(np.stack(images))
    return out


def frame_times(num_frames: int, fps: float) -> torch.Tensor:
    """Timestamps (seconds from the clip start) of the frames `decode_video` returns, for aligning with audio."""
    return torch.arange(num_frames, dtype=torch.float64) / fps


__all__ = [
    "SampleDecoder",
    "ShardStream",
    "collate",
    "decode_audio",
    "decode_image",
    "decode_npy",
    "decode_video",
    "frame_times",
    "member_extension",
    "resolve_shards",
    "stream",
]

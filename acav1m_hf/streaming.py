"""Stream ACAV-1M shards into PyTorch with webdataset, decoding only what the schema declares.

`stream` returns a ``torch.utils.data.IterableDataset`` (a `ShardStream`, a
webdataset pipeline) for training loops that want tensors, not ``datasets``
objects:

* shards are split by node (``RANK``/``WORLD_SIZE`` or ``torch.distributed``)
  and then by DataLoader worker, so every sample is read exactly once per
  epoch when the shard count is a multiple of ``world_size * num_workers``
  (otherwise some workers read more, none reads a sample twice);
  ``equal_per_rank=True`` gives every rank the same number per epoch;
* shards and samples are shuffled deterministically from ``seed`` and the epoch
  (`ShardStream.set_epoch`), and an epoch resumes exactly where it stopped
  (`ShardStream.state_dict`, as torchdata's ``StatefulDataLoader`` calls it);
* decoding is *ours*: webdataset's ``.decode()`` maps ``.pyd``/``.pickle`` to
  ``pickle.loads`` and ``.pth`` to ``torch.load(weights_only=False)``, so a
  shard from an untrusted mirror could run code. Here only the members of
  `acav1m_hf.schema.MEMBERS` are read from the tar at all; anything else is
  skipped unread (or refused with ``unknown="error"``);
* the tar is read by us too (`_ReadShards`), so that a compressed file, a link
  member, a key like ``../x`` or a member larger than ``max_member_bytes`` is
  refused before anything is expanded or read into memory, naming the shard;
* a bad sample raises an error naming its shard and key, or, with
  ``on_error="skip"``, is skipped with a logged warning and counted.

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
import logging
import multiprocessing
import os
import random
import sys
import tarfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import webdataset as wds
    from webdataset.cache import StreamingOpen
    from webdataset.pipeline import PipelineStage
except ImportError as exc:  # pragma: no cover - exercised only without the torch extra
    raise ImportError("acav1m_hf.streaming needs torch and webdataset: pip install 'acav1m[torch]'") from exc

from acav1m_hf.release import index_name, list_shards
from acav1m_hf.schema import AUDIO_SAMPLE_RATE, MAX_MEMBER_BYTES, MEMBER_EXTENSIONS, MEMBERS, SPLITS, check_member

logger = logging.getLogger(__name__)

_MEMBERS = frozenset(MEMBER_EXTENSIONS)
_REQUIRED = tuple(m.extension for m in MEMBERS if m.required)
_IDENTITY = ("__key__", "__url__")


# --------------------------------------------------------------------------- member decoders


def _split_name(name: str) -> tuple[str, str | None]:
    """(key, extension) of a tar member name: ``s001.mask.png`` -> ``("s001", "mask.png")``, ``../x.mp4`` -> ``("../x", "mp4")``.

    The extension is everything after the first dot of the basename, lowercased; the key is everything before it,
    directory parts included, so that the key check sees them (webdataset's ``base_plus_ext`` splits the same way).
    """
    base = name.rsplit("/", 1)[-1]
    stem, dot, ext = base.partition(".")
    return name[: len(name) - len(base) + len(stem)], ext.lower() if dot else None


def member_extension(name: str) -> str | None:
    """The member extension of a tar member name (everything after the first dot of the basename), lowercased.

    The same split as webdataset's and ``datasets``' ``base_plus_ext``: ``a/s001.mask.png`` -> ``mask.png``.
    """
    return _split_name(name)[1]


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
    """Member-name predicate: True for schema members; others are skipped unread or refused (``unknown``)."""

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


# --------------------------------------------------------------------------- reading and checking shards


class _ReadShards(PipelineStage):
    """Samples from opened shards (``{"url", "stream"}``), read with ``tarfile`` in stream mode and checked as read.

    Whatever the shard, these are refused with an error naming it (an ACAV-1M shard never has them, so a shard that
    does is damaged or hostile): a compressed file (tarfile's own magic-byte detection; webdataset would gunzip it), a
    member that is not a regular file (link, device, FIFO, directory), a key outside `KEY_PATTERN` (``../x``,
    ``a/b``, an absolute path), and with ``unknown="error"`` a member outside the schema. A member over
    ``max_member_bytes`` (its tar header's size) is never read: its sample is yielded at once as ``__error__`` only
    (as is one with a member twice), its other members are skipped unread, and `_Decode` raises or skips it.
    """

    def __init__(self, unknown: str, max_member_bytes: int) -> None:
        if max_member_bytes <= 0:
            raise ValueError(f"max_member_bytes must be positive, got {max_member_bytes}")
        self.select = _SelectMembers(unknown)
        self.max_member_bytes = max_member_bytes

    def run(self, src: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for source in src:
            try:
                yield from self._samples(source["url"], source["stream"])
            finally:
                source["stream"].close()

    def _samples(self, url: str, fileobj: Any) -> Iterator[dict[str, Any]]:
        try:
            tar = tarfile.open(fileobj=fileobj, mode="r|*")
        except tarfile.TarError as exc:
            raise ValueError(f"{url}: not a tar file ({exc})") from exc
        if tar.fileobj.comptype != "tar":  # what "r|*" detected from the magic bytes (tarfile's _Stream attribute)
            raise ValueError(
                f"{url}: {tar.fileobj.comptype}-compressed; ACAV-1M shards are plain tar, a compressed one is refused"
            )
        sample: dict[str, Any] | None = None
        refused = None  # the key of a sample refused at one of its members: the rest stay unread
        while True:
            try:
                info = tar.next()
            except tarfile.TarError as exc:
                raise ValueError(f"{url}: unreadable tar ({exc})") from exc
            if info is None:
                break
            tar.members = []  # stream mode: keep no list of every TarInfo read
            key, ext = self._check(url, info)
            if ext is None or key == refused:
                continue
            if sample is None or sample["__key__"] != key:
                if sample is not None:
                    yield sample
                sample = {"__key__": key, "__url__": url}
            problem = None
            if ext in sample:
                problem = f"member {ext} appears twice"
            elif info.size > self.max_member_bytes:
                problem = (
                    f"member {ext} is {info.size} bytes, over the limit of {self.max_member_bytes} (max_member_bytes)"
                )
            if problem is not None:
                yield {"__key__": key, "__url__": url, "__error__": problem}  # now, before tarfile skips the member
                sample, refused = None, key
                continue
            try:
                sample[ext] = tar.extractfile(info).read()
            except tarfile.TarError as exc:
                raise ValueError(f"{url}: unreadable tar at member {info.name!r} ({exc})") from exc
        if sample is not None:
            yield sample

    def _check(self, url: str, info: tarfile.TarInfo) -> tuple[str, str | None]:
        """(key, extension) of a member to read, extension None for one to skip unread; raises for a refused one.

        The member's size is left to `_samples`, which refuses only its sample (so that ``on_error="skip"`` can
        skip it); everything else `schema.check_member` refuses is the whole shard's fault.
        """
        try:
            key, ext = check_member(info, max_bytes=sys.maxsize)
            return key, ext if self.select(info.name) else None
        except ValueError as exc:
            raise ValueError(f"{url}: {exc}") from None


def _checked(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample, or a ValueError naming its shard and key if the reader refused it or a required member is missing."""
    problem = sample.get("__error__")
    missing = [ext for ext in _REQUIRED if sample.get(ext) is None]
    if problem is None and missing:
        problem = f"required member{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing"
    if problem is not None:
        raise ValueError(f"{sample['__url__']}: sample {sample['__key__']!r}: {problem}")
    return sample


class _OnError:
    """What `stream` does with a bad sample: ``"raise"`` its error (naming shard and key), or ``"skip"`` it.

    A skip logs a warning (logger ``acav1m_hf.streaming``) and adds one to a ``multiprocessing.Value``. The Value is
    made in the spawn context, which fork, spawn and forkserver DataLoader workers can all share, so the main
    process's `ShardStream.skipped` adds up the skips of every worker.
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


class _Decode(PipelineStage):
    """Check (`_checked`) and decode each sample; a bad one goes to `_OnError`."""

    def __init__(self, decoder: Callable[[dict[str, Any]], dict[str, Any]], on_error: _OnError) -> None:
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


# --------------------------------------------------------------------------- epochs, resume, equal lengths


@dataclass
class _Position:
    """Where one iteration of a `ShardStream` is: what `ShardStream.state_dict` saves."""

    epoch: int = 0
    consumed: int = 0  # samples of the current pass over this worker's shards that reached the decoder
    yielded: int = 0  # samples yielded in this epoch (over all passes, see equal_per_rank)


class _Progress:
    """The position of a `ShardStream`, shared with its `_Consume` stage and with the copies ``.map`` etc. make."""

    def __init__(self) -> None:
        self.position = _Position()  # of the current or last iteration
        self.start: _Position | None = None  # set by load_state_dict: where the next iteration starts
        self.next_epoch = 0


class _Consume(PipelineStage):
    """Count the samples that reach the decoder; after a restore, drop the first ``consumed`` undecoded.

    The dropped ones are read from their tars again and pass through the shuffle buffer as before, so every sample
    after them comes in exactly the order of an uninterrupted epoch; they are not decoded, the costly part.
    """

    def __init__(self, progress: _Progress) -> None:
        self.progress = progress

    def run(self, src: Iterable[Any]) -> Iterator[Any]:
        position = self.progress.position
        done = position.consumed
        for i, sample in enumerate(src):
            if i >= done:
                position.consumed = i + 1
                yield sample


class ShardStream(wds.DataPipeline, wds.FluidInterface):
    """The ``IterableDataset`` `stream` returns: a webdataset pipeline (``.map``, ``.batched`` ... chain on it)
    with `set_epoch`, mid-epoch `state_dict`/`load_state_dict`, a count of `skipped` samples and, with
    ``equal_per_rank``, the same number of samples per epoch on every rank."""

    def __init__(
        self, stages: list[Any], progress: _Progress, on_error: _OnError, shard_counts: list[int] | None
    ) -> None:
        super().__init__(stages)
        self._progress = progress
        self._on_error = on_error
        self._shard_counts = shard_counts

    @property
    def skipped(self) -> int:
        """Samples skipped with ``on_error="skip"`` so far, in this process and its DataLoader workers together."""
        return 0 if self._on_error.count is None else self._on_error.count.value

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration read ``epoch`` (call before each epoch, as with ``DistributedSampler``).

        Without it, each new iteration in this process starts the next epoch; DataLoader workers get a fresh copy
        of the stream every epoch, so with workers only `set_epoch` changes the shuffle from epoch to epoch.
        """
        start = self._progress.start
        if start is not None and start.epoch != epoch:
            if start != _Position(epoch=start.epoch):
                raise ValueError(
                    f"set_epoch({epoch}): the stream was restored {start.yielded} samples into epoch {start.epoch};"
                    f" call set_epoch({start.epoch}) to resume it, or load a state saved at the start of an epoch"
                )
            self._progress.start = None
        self._progress.next_epoch = epoch
        self._progress.position = self._progress.start or _Position(epoch=epoch)

    def state_dict(self) -> dict[str, int]:
        """Where this stream is in its epoch, as plain ints (see the README for DataLoader workers)."""
        return asdict(self._progress.start or self._progress.position)

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Make the next iteration continue where `state_dict` was taken (same `stream` arguments, same shards)."""
        self._progress.start = self._progress.position = _Position(**state_dict)

    def with_epoch(self, nsamples: int = -1, nbatches: int = -1) -> ShardStream:
        """Not supported: `stream(..., equal_per_rank=True)` fixes the epoch length per rank."""
        raise NotImplementedError("ShardStream sets its own epoch length: use stream(..., equal_per_rank=True)")

    repeat = with_epoch

    def __iter__(self) -> Iterator[Any]:
        progress = self._progress
        position = progress.start or _Position(epoch=progress.next_epoch)
        progress.start, progress.position, progress.next_epoch = None, position, position.epoch + 1
        length = self._epoch_length()
        while length is None or position.yielded < length:
            for stage in self.pipeline:
                if isinstance(stage, (_SeededShuffle, wds.filters.detshuffle)):
                    stage.epoch = position.epoch - 1  # each increments it when it starts
            before, resumed = position.yielded, position.consumed > 0
            for sample in self.iterator1():
                position.yielded += 1
                yield sample
                if position.yielded == length:
                    break
            if length is None or (position.yielded == before and not resumed):
                break  # one pass; or a pass that yielded nothing would yield nothing again
            if position.yielded < length:
                position.consumed = 0  # equal_per_rank: wrap around, the same order again
        progress.position = _Position(epoch=position.epoch + 1)

    def _epoch_length(self) -> int | None:
        """With ``equal_per_rank``: this worker's samples per epoch, the largest share of its worker slot on any rank.

        Shards go to ranks and then to workers as ``split_by_node`` and ``split_by_worker`` deal them, so worker
        ``w`` of every rank yields the same number and every rank the same sum; a slot with fewer samples wraps
        around, so nothing is left out.
        """
        if self._shard_counts is None:
            return None
        rank, world, worker, workers = wds.utils.pytorch_worker_info()
        shares = [sum(self._shard_counts[r::world][worker::workers]) for r in range(world)]
        if shares[rank] == 0 and max(shares) > 0:
            raise ValueError(
                f"equal_per_rank: rank {rank}, DataLoader worker {worker} has no samples ({len(self._shard_counts)}"
                f" shards for {world} ranks x {workers} workers); give at least one shard per rank and worker"
            )
        return max(shares)


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


def shard_counts(root: str | os.PathLike[str], split: str, urls: Sequence[str]) -> list[int]:
    """Samples in each of ``urls`` (shards of the release at ``root``), from its Parquet index ``metadata/{split}``."""
    import pyarrow.parquet as pq

    root = Path(root)
    path = root / index_name(split)
    if not path.is_file():
        raise ValueError(f"equal_per_rank: {path} not found (it counts the samples of each shard)")
    counts = Counter(pq.read_table(path, columns=["shard"]).column("shard").to_pylist())
    names = [Path(u).relative_to(root).as_posix() for u in urls]
    unknown = [n for n in names if n not in counts]
    if unknown:
        raise ValueError(f"equal_per_rank: {path} has no rows for {', '.join(unknown)}; index and shards disagree")
    return [counts[n] for n in names]


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
    on_error: str = "raise",
    max_member_bytes: int = MAX_MEMBER_BYTES,
    equal_per_rank: bool = False,
) -> ShardStream:
    """A PyTorch ``IterableDataset`` over ACAV-1M shards (see the module docstring for what a sample holds).

    ``urls_or_dir``: a release folder (its ``split`` shards), a list of shard
    paths/URLs, or one path/URL/brace pattern (``data/train-{00000..00003}.tar``).
    ``shuffle``: sample buffer size (0: shards and samples in order); shards are
    shuffled too when it is positive. ``decode=False`` yields the members' raw
    bytes (the fast path for re-sharding or custom decoding); ``video=False``
    decodes everything but keeps ``mp4`` as bytes. ``unknown``: what to do with
    a member outside the schema (``"skip"`` it unread, or ``"error"``).

    ``on_error``: a bad sample (a member that does not decode, a required member
    missing, a member over ``max_member_bytes`` bytes or twice in the sample)
    raises a ``ValueError`` naming the shard and the key (``"raise"``), or is
    skipped with a logged warning naming both and counted in
    `ShardStream.skipped` (``"skip"``). A damaged or hostile shard (compressed,
    a link or device member, a key outside ``schema.KEY_PATTERN``, an unreadable
    tar) always raises, naming the shard.

    Splitting: by node (``wds.split_by_node``) and by worker
    (``wds.split_by_worker``), whole shards at a time; give at least
    ``world_size * num_workers`` shards or some workers get none. Ranks then
    read different numbers of samples unless ``equal_per_rank=True``: every rank
    (and worker slot) yields as many samples per epoch as the largest share, the
    smaller shares wrapping around; it needs ``urls_or_dir`` to be a release
    folder, whose Parquet index counts the samples of each shard.
    """
    urls = resolve_shards(urls_or_dir, split)
    counts = None
    if equal_per_rank:
        if not (isinstance(urls_or_dir, (str, os.PathLike)) and Path(urls_or_dir).is_dir()):
            raise ValueError("equal_per_rank needs a release folder: its metadata/ index counts the samples per shard")
        counts = shard_counts(urls_or_dir, split, urls)
    progress, errors = _Progress(), _OnError(on_error)
    decoder: Callable[[dict[str, Any]], dict[str, Any]] = (
        SampleDecoder(fps=fps, size=size, audio_seconds=audio_seconds, max_frames=max_frames, video=video)
        if decode
        else _raw
    )
    shard_shuffle = [wds.filters.detshuffle(len(urls) if isinstance(urls, list) else 100, seed=seed)]
    stages = [
        wds.SimpleShardList(urls),
        wds.split_by_node,
        wds.split_by_worker,
        *(shard_shuffle if shuffle > 0 else []),
        StreamingOpen(),
        _ReadShards(unknown, max_member_bytes),
        *([_SeededShuffle(shuffle, seed)] if shuffle > 0 else []),
        _Consume(progress),
        _Decode(decoder, errors),
    ]
    return ShardStream(stages, progress, errors, counts)


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

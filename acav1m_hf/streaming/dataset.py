"""`stream`: the pipeline from shard URLs to decoded samples, wired from the stages of this package.

URLs (`resolve_shards`) -> split by node and DataLoader worker -> shard shuffle -> open -> the safe tar reader
(`reader.ReadShards`) -> sample shuffle (`epochs.SeededShuffle`) -> count for resume (`epochs.Consume`) -> check and
decode (`decode.DecodeSamples`), inside a `epochs.ShardStream`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import webdataset as wds
from webdataset.cache import StreamingOpen

from acav1m_hf.release import index_name, list_shards
from acav1m_hf.schema import MAX_MEMBER_BYTES, SPLITS
from acav1m_hf.streaming.decode import DecodeSamples, OnError, SampleDecoder, raw_members
from acav1m_hf.streaming.epochs import Consume, Progress, SeededShuffle, ShardStream
from acav1m_hf.streaming.reader import ReadShards


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
    progress, errors = Progress(), OnError(on_error)
    decoder: Callable[[dict[str, Any]], dict[str, Any]] = (
        SampleDecoder(fps=fps, size=size, audio_seconds=audio_seconds, max_frames=max_frames, video=video)
        if decode
        else raw_members
    )
    shard_shuffle = [wds.filters.detshuffle(len(urls) if isinstance(urls, list) else 100, seed=seed)]
    stages = [
        wds.SimpleShardList(urls),
        wds.split_by_node,
        wds.split_by_worker,
        *(shard_shuffle if shuffle > 0 else []),
        StreamingOpen(),
        ReadShards(unknown, max_member_bytes),
        *([SeededShuffle(shuffle, seed)] if shuffle > 0 else []),
        Consume(progress),
        DecodeSamples(decoder, errors),
    ]
    return ShardStream(stages, progress, errors, counts)

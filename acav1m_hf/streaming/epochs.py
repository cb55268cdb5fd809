"""`ShardStream`, the ``IterableDataset`` `acav1m_hf.streaming.stream` returns: epochs, shuffling, resume and
equal shares per rank.

Shards are shuffled by webdataset's ``detshuffle`` and samples by `SeededShuffle`, both from the seed and the epoch
(`ShardStream.set_epoch`); `Consume` counts what reached the decoder, so that `ShardStream.state_dict` can resume an
epoch exactly where it stopped; with ``equal_per_rank`` each rank and worker slot wraps around to the same length.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import webdataset as wds
from webdataset.pipeline import PipelineStage

from acav1m_hf.streaming.decode import OnError


class SeededShuffle(PipelineStage):
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


@dataclass
class Position:
    """Where one iteration of a `ShardStream` is: what `ShardStream.state_dict` saves."""

    epoch: int = 0
    consumed: int = 0  # samples of the current pass over this worker's shards that reached the decoder
    yielded: int = 0  # samples yielded in this epoch (over all passes, see equal_per_rank)


class Progress:
    """The position of a `ShardStream`, shared with its `Consume` stage and with the copies ``.map`` etc. make."""

    def __init__(self) -> None:
        self.position = Position()  # of the current or last iteration
        self.start: Position | None = None  # set by load_state_dict: where the next iteration starts
        self.next_epoch = 0


class Consume(PipelineStage):
    """Count the samples that reach the decoder; after a restore, drop the first ``consumed`` undecoded.

    The dropped ones are read from their tars again and pass through the shuffle buffer as before, so every sample
    after them comes in exactly the order of an uninterrupted epoch; they are not decoded, the costly part.
    """

    def __init__(self, progress: Progress) -> None:
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
        self, stages: list[Any], progress: Progress, on_error: OnError, shard_counts: list[int] | None
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
            if start != Position(epoch=start.epoch):
                raise ValueError(
                    f"set_epoch({epoch}): the stream was restored {start.yielded} samples into epoch {start.epoch};"
                    f" call set_epoch({start.epoch}) to resume it, or load a state saved at the start of an epoch"
                )
            self._progress.start = None
        self._progress.next_epoch = epoch
        self._progress.position = self._progress.start or Position(epoch=epoch)

    def state_dict(self) -> dict[str, int]:
        """Where this stream is in its epoch, as plain ints (see the README for DataLoader workers)."""
        return asdict(self._progress.start or self._progress.position)

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Make the next iteration continue where `state_dict` was taken (same `stream` arguments, same shards)."""
        self._progress.start = self._progress.position = Position(**state_dict)

    def with_epoch(self, nsamples: int = -1, nbatches: int = -1) -> ShardStream:
        """Not supported: `stream(..., equal_per_rank=True)` fixes the epoch length per rank."""
        raise NotImplementedError("ShardStream sets its own epoch length: use stream(..., equal_per_rank=True)")

    repeat = with_epoch

    def __iter__(self) -> Iterator[Any]:
        progress = self._progress
        position = progress.start or Position(epoch=progress.next_epoch)
        progress.start, progress.position, progress.next_epoch = None, position, position.epoch + 1
        length = self._epoch_length()
        while length is None or position.yielded < length:
            for stage in self.pipeline:
                if isinstance(stage, (SeededShuffle, wds.filters.detshuffle)):
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
        progress.position = Position(epoch=position.epoch + 1)

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

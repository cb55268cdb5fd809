"""Decode ahead: a stream of decoded batches filled by a background thread, so the models never wait for decoding.

`ahead` runs an iterator (the unit's decoding, `curation.unit`) in one
background thread, at most ``depth`` items ahead of its consumer, and hands the
items over in their order, unchanged. While the models judge one batch, the
next ``depth`` are decoded; while decoding, the models have a batch to work on.
What it changes is only *when* an item is computed, never *what* or in which
order, so the shards are byte-identical with ``depth`` 0 (inline, no thread) and
any other (`tests/test_decode_ahead.py`).

* **Order and errors.** Items come out in the source's order. An exception the
  source raises (a `curation.records.Rejected` for a file that breaks after
  some clips, or a defect) is raised in the consumer after the items the source
  yielded before it, at the same point of the stream as inline.
* **Memory.** The producer takes a slot before it computes an item and the
  consumer frees it when it takes the item, so at most ``depth`` items are
  queued or being computed beyond the one the consumer holds: ``depth + 1``
  batches in memory, not the input's length.
* **Stopping.** Leaving the ``with`` block (the consumer is done, stops early or
  raises) stops the producer after the item it is computing and joins it; the
  source is closed in the producer's thread (its files closed). No thread
  outlives the block. An error closing the source is raised on leaving the
  block, as inline.
* **Threads and BLAS.** Only the source runs in the background thread; the
  models run in the consumer's thread, inside `curation.analyse.one_blas_thread`
  as before. threadpoolctl's limit on OpenBLAS (and MKL) is process-wide, so it
  holds in the producer too; its OpenMP limit (torch's intra-op threads) is
  per thread, so the producer runs with the default OpenMP threads. That is
  harmless because the producer only decodes: PyAV/FFmpeg (its own codec
  threads) and element-wise numpy, no BLAS or OpenMP reduction whose last bits
  depend on a thread count. Model code must never move into the source.
  `curation.segments.prefetch` runs its fetches in threads of its own, started
  before this one: the source waits on a fetched segment in the producer
  (`segment_clips`), so fetching stays ``FetchOptions.concurrency`` inputs ahead
  and decoding ``depth`` batches ahead, one after the other.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Raised:
    error: BaseException


_END = object()
"""What the producer queues after the source's last item."""


@contextmanager
def ahead(source: Iterator[T], depth: int) -> Iterator[Iterator[T]]:
    """``source``'s items, computed up to ``depth`` ahead in a background thread; ``depth`` 0: inline, no thread."""
    if depth < 0:
        raise ValueError(f"decode ahead: depth must be >= 0, got {depth}")
    if depth == 0:
        try:
            yield source
        finally:
            _close(source)
        return
    producer = _Producer(source, depth)
    try:
        yield producer.items()
    finally:
        producer.stop()


class _Producer(Generic[T]):
    def __init__(self, source: Iterator[T], depth: int) -> None:
        self._source = source
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._slots = threading.Semaphore(depth)
        self._stopped = threading.Event()
        self._close_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="decode-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._slots.acquire()
                if self._stopped.is_set():
                    return
                try:
                    item = next(self._source)
                except StopIteration:
                    self._queue.put(_END)
                    return
                except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
                    self._queue.put(_Raised(error))
                    return
                self._queue.put(item)
        finally:
            try:
                _close(self._source)
            except BaseException as error:  # noqa: BLE001 - raised in the consumer's thread by `stop`
                self._close_error = error

    def items(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            self._slots.release()
            yield item  # type: ignore[misc]

    def stop(self) -> None:
        self._stopped.set()
        self._slots.release()  # a producer waiting for a slot wakes up and sees the stop
        self._thread.join()
        if self._close_error is not None:
            raise self._close_error


def _close(source: Iterator[object]) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()

"""Decoding ahead of the models (`curation.decode_ahead`): same release bytes and outcomes as inline, bounded, joined."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import pytest

import curation.unit
from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.decode_ahead import ahead
from curation.fetch_cache import Segment
from curation.plan import Unit
from curation.records import Clip, InputItem, Rejected, SourceInfo
from curation.run import curate
from curation.unit import _process_unit
from curation.writer import Store
from tests.conftest import release_files
from tests.curate_harness import CONFIG, quiet
from tests.synthetic import make_clip, write_video_file

SMALL = replace(CONFIG, inputs_per_unit=3, batch_size=1)
"""Three inputs per unit and one clip per batch: a unit's stream has several batches and input ends to run ahead."""


def _ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "decode-ahead"]


def _breaking_decoder(item: InputItem, config: CurationConfig) -> Iterator[Clip]:
    """`decode_clips`, but a file named ``broken*`` fails after its first clip, as a file cut short in transit does.

    A truncated local file ends quietly (FFmpeg reads MP4, Matroska and MPEG-TS up to the cut and stops), so the
    failure the decoder raises mid-file (a read error) is injected here.
    """
    clips = decode_clips(item, config)
    if not Path(item.path).name.startswith("broken"):
        yield from clips
        return
    yield next(clips)
    raise Rejected("undecodable", f"{item.path}: truncated after its first clip")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("inputs")
    for i, name in enumerate(["a", "broken", "c", "d", "e"]):
        write_video_file(folder / f"{name}.mp4", make_clip(seconds=4.5, seed=40 + i))
    return [str(folder)]


def test_release_is_byte_identical_with_and_without_decode_ahead(
    inputs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curation.unit, "decode_clips", _breaking_decoder)
    releases = {}
    for depth in (0, 2):
        root = tmp_path / f"ahead{depth}"
        curate(inputs, root, replace(SMALL, decode_ahead=depth), log=quiet)
        releases[depth] = release_files(root)
        assert not _ahead_threads()
    assert releases[0] == releases[2]
    lines = releases[2]["inputs.jsonl"].decode().splitlines()
    broken = [line for line in lines if "broken.mp4" in line]
    assert len(lines) == 5 and len(broken) == 1
    assert "stopped early, undecodable: " in broken[0] and '"outcome": "kept"' in broken[0]
    assert b'"decode_ahead"' not in releases[2]["report.json"]  # how a run runs is not what it wrote


def test_items_in_order_and_an_error_at_its_point() -> None:
    def source() -> Iterator[int]:
        yield from range(5)
        raise Rejected("undecodable", "cut short")

    for depth in (0, 1, 3):
        got = []
        with pytest.raises(Rejected, match="cut short"), ahead(source(), depth) as items:
            for item in items:
                got.append(item)
        assert got == [0, 1, 2, 3, 4]
        assert not _ahead_threads()


def test_the_producer_stops_and_joins_when_the_consumer_stops_or_raises() -> None:
    closed = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(threading.current_thread().name)

    with ahead(endless(), 2) as items:
        assert next(iter(items)) == 0
        assert _ahead_threads()
    assert not _ahead_threads() and closed == ["decode-ahead"]

    with pytest.raises(ValueError, match="the consumer failed"), ahead(endless(), 2) as items:
        for _ in items:
            raise ValueError("the consumer failed")
    assert not _ahead_threads() and closed == ["decode-ahead"] * 2


def test_an_error_closing_the_source_is_raised_on_leaving_the_block_inline_or_not() -> None:
    def leaky() -> Iterator[int]:
        try:
            yield from range(100)
        except GeneratorExit:
            raise OSError("the segment's file could not be closed") from None

    for depth in (0, 2):
        with pytest.raises(OSError, match="could not be closed"), ahead(leaky(), depth) as items:
            assert next(iter(items)) == 0  # the consumer stops early: the source is closed
        assert not _ahead_threads()


def test_the_producer_is_never_more_than_depth_items_ahead() -> None:
    """A slow consumer: with each item it holds, it waits until the producer filled its window, and lingers there."""
    depth, total = 3, 12
    started: list[int] = []
    changed = threading.Condition()

    def source() -> Iterator[int]:
        for n in range(total):
            with changed:
                started.append(n)
                changed.notify_all()
            yield n

    received = 0
    with ahead(source(), depth) as items:
        for _ in items:
            with changed:
                received += 1
                window = min(total, received + depth)
                assert changed.wait_for(lambda window=window: len(started) >= window, timeout=30)
                changed.wait(0.02)  # room for a producer that ignores its bound to overshoot (wakes on a start)
                assert len(started) == window  # the one held and depth more, queued or being decoded
    assert received == total


def test_decode_ahead_must_be_a_whole_number_of_batches() -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="decode_ahead must be a whole number of batches >= 0"):
            CurationConfig(decode_ahead=bad)  # type: ignore[arg-type]


class AwaitedFuture(Future):
    """A future that says when someone starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = threading.Event()

    def result(self, timeout: float | None = None) -> Segment:
        self.awaited.set()
        return super().result(timeout)


class FailingModels:
    """Model stages that fail (as on a model's out-of-memory error) once the decoding thread waits for ``fetch``."""

    profile = None

    def __init__(self, fetch: AwaitedFuture) -> None:
        self.fetch = fetch

    def run(self, clips: list[Clip]) -> list:
        self.fetch.awaited.wait(timeout=30)
        raise RuntimeError("model stage failed")


def test_a_unit_whose_models_fail_does_not_wait_for_a_fetch_not_started(tmp_path: Path) -> None:
    """The second input's fetch never starts (its future stays pending, as behind a busy fetch pool): the decoding
    thread waits on it, so the failing unit must cancel it, or leaving the unit would wait for that download."""
    video = write_video_file(tmp_path / "a.mp4", make_clip(seconds=4.5, seed=7))
    items = tuple(InputItem(f"https://example.org/{k}", f"v{k}", start=0.0, end=4.0, ytdlp=True) for k in range(2))
    done, never = Future(), AwaitedFuture()
    done.set_result(Segment(str(video), 0.0, SourceInfo(), True))
    unit = Unit("train", 0, items)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            _process_unit(
                unit,
                replace(SMALL, decode_ahead=8),  # room to decode past the first input, up to the second fetch
                Store(tmp_path / "out"),
                "part-{}.tar".format,
                FailingModels(never),
                {0: done, 1: never},
            )
        except BaseException as error:  # noqa: BLE001 - what the unit raised, checked below
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the unit is still waiting for a fetch that never started"
    assert [str(e) for e in outcome] == ["model stage failed"] and never.cancelled()
    assert not _ahead_threads()

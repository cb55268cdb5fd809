"""Write path: `curation.writer.ShardWriter` MB/s against writing the same bytes with ``tarfile`` alone.

The samples (every member of the first ``--write-mb`` MB of the release) are
read into memory first; then each case writes them into tars of
``--per-shard`` samples in a scratch folder next to the release, which is
emptied between runs:

* ``shardwriter``: `curation.writer.ShardWriter` (webdataset ``TarWriter``
  underneath, sha256 of every byte, fsync and atomic rename per shard);
* ``tarfile``: ``tarfile`` alone, ``TarInfo`` + ``addfile`` per member, the
  same members in the same order, no hash, no fsync (*the goal's peer*);
* ``tarfile-fsync``: the same plus fsync and rename per shard, i.e. the
  durability the shard writer promises, so the cost of the disk is visible;
* ``wds-tarwriter``: webdataset's ``TarWriter`` alone (what the shard writer
  wraps), no hash, no fsync;
* ``shardwriter-overlapped``: a prototype of the proposed fix, same bytes, hash
  and durability, with the hash in a helper thread, a 1-MiB file buffer and
  each shard's fsync + rename in the background (`write_overlapped`).

    .venv/bin/python bench/write_bench.py --size-gb 1 --out bench/out
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Result, bench_parser, machine_line, paired_rounds, shard_writer, summary_rows  # noqa: E402
from bench.gen_shards import ensure_release, release_options  # noqa: E402

Samples = list[tuple[str, dict[str, bytes]]]


def read_samples(shards: list[Path], limit_bytes: int) -> Samples:
    from bench.read_bench import load_members

    samples: Samples = []
    total = 0
    for path in shards:
        for members in load_members([path]):
            import json

            samples.append((json.loads(members["json"])["key"], members))
            total += sum(len(v) for v in members.values())
            if total >= limit_bytes:
                return samples
    return samples


def _payload(samples: Samples) -> int:
    return sum(len(v) for _, members in samples for v in members.values())


def write_shardwriter(samples: Samples, folder: Path, per_shard: int) -> tuple[int, int]:
    from curation.records import Sample

    writer = shard_writer(folder, per_shard)
    for key, members in samples:
        writer.write(Sample(key, {}, members))
    writer.close()
    return len(samples), _payload(samples)


def write_tarfile(samples: Samples, folder: Path, per_shard: int, durable: bool = False) -> tuple[int, int]:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(0, len(samples), per_shard):
        final = folder / f"part-{n // per_shard:05d}.tar"
        path = final.with_name(f".{final.name}.partial") if durable else final
        with open(path, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for key, members in samples[n : n + per_shard]:
                    for ext in sorted(members):
                        data = members[ext]
                        info = tarfile.TarInfo(f"{key}.{ext}")
                        info.size, info.mtime, info.mode = len(data), 0, 0o444
                        info.uname = info.gname = "acav1m"
                        tar.addfile(info, io.BytesIO(data))
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if durable:
            os.replace(path, final)
    return len(samples), _payload(samples)


class _OverlappedHashingWriter:
    """Write-only stream: bytes go to a 1-MiB buffered file here and to sha256 in a helper thread.

    hashlib releases the GIL while it hashes, so the digest is computed on the other core while this
    thread goes on writing; blocks are handed over in batches of about 1 MiB.
    """

    def __init__(self, inner: Any) -> None:
        import hashlib
        import queue
        import threading

        self.inner, self.count, self.digest = inner, 0, hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._queue: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._hash, daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        while (batch := self._queue.get()) is not None:
            for block in batch:
                self.digest.update(block)

    def write(self, data: bytes) -> int:
        self.inner.write(data)
        self.count += len(data)
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= 1 << 20:
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0
        return len(data)

    def flush(self) -> None:
        self.inner.flush()

    def hexdigest(self) -> str:
        self._queue.put(self._batch)
        self._queue.put(None)
        self._thread.join()
        return self.digest.hexdigest()


def write_overlapped(samples: Samples, folder: Path, per_shard: int) -> tuple[int, int]:
    """A prototype of the fix proposed for `curation.writer.ShardWriter` (local store), same bytes and guarantees.

    Same tar (webdataset ``TarWriter``, mtime 0, user/group acav1m), same sha256, same fsync and atomic
    rename per shard; but the file has a 1-MiB buffer, the hash runs in a helper thread, and each finished
    shard's fsync + rename runs in the background while the next shard is written (all joined at close).
    """
    from concurrent.futures import ThreadPoolExecutor

    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    digests: list[str] = []

    def finish(f: Any, partial: Path, final: Path) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(partial, final)

    with ThreadPoolExecutor(max_workers=1) as syncer:
        pending = []
        for n in range(0, len(samples), per_shard):
            final = folder / f"part-{n // per_shard:05d}.tar"
            partial = final.with_name(f".{final.name}.partial")
            f = open(partial, "wb", buffering=1 << 20)  # noqa: SIM115 - closed by finish()
            stream = _OverlappedHashingWriter(f)
            tar = wds.TarWriter(stream, encoder=False, mtime=0, user="acav1m", group="acav1m")
            for key, members in samples[n : n + per_shard]:
                tar.write({"__key__": key, **members})
            tar.close()
            digests.append(stream.hexdigest())
            pending.append(syncer.submit(finish, f, partial, final))
        for future in pending:
            future.result()
    return len(samples), _payload(samples)


def write_wds(samples: Samples, folder: Path, per_shard: int) -> tuple[int, int]:
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    for n in range(0, len(samples), per_shard):
        with open(folder / f"part-{n // per_shard:05d}.tar", "wb") as f:
            tar = wds.TarWriter(f, encoder=False, mtime=0, user="acav1m", group="acav1m")
            for key, members in samples[n : n + per_shard]:
                tar.write({"__key__": key, **members})
            tar.close()
    return len(samples), _payload(samples)


def run(args: argparse.Namespace) -> Result:
    root = ensure_release(args.out, args.size_gb, args.clip_seconds, args.samples_per_shard)
    shards = sorted((root / "data").glob("train-*.tar"))
    print(machine_line())
    samples = read_samples(shards, int(args.write_mb * 1e6))
    import webdataset  # noqa: F401

    import curation.records  # noqa: F401 - imported before any timing
    import curation.writer  # noqa: F401

    print(f"write: {len(samples)} samples, {_payload(samples) / 1e6:.0f} MB in memory, {args.per_shard} per shard")
    scratch = args.out / "write-scratch"
    result = Result("write", params={k: str(v) for k, v in vars(args).items()})

    def case(write: Callable[[Path], tuple[int, int]], name: str) -> Callable[[], tuple[int, int]]:
        def go() -> tuple[int, int]:
            folder = scratch / name
            shutil.rmtree(folder, ignore_errors=True)
            try:
                return write(folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        return go

    per = args.per_shard
    cases = {
        "shardwriter": case(lambda f: write_shardwriter(samples, f, per), "shardwriter"),
        "tarfile": case(lambda f: write_tarfile(samples, f, per), "tarfile"),
        "tarfile-fsync": case(lambda f: write_tarfile(samples, f, per, durable=True), "tarfile-fsync"),
        "wds-tarwriter": case(lambda f: write_wds(samples, f, per), "wds-tarwriter"),
        "shardwriter-overlapped": case(lambda f: write_overlapped(samples, f, per), "shardwriter-overlapped"),
    }
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only.split(",")}
    runs = paired_rounds(cases, args.rounds)
    shutil.rmtree(scratch, ignore_errors=True)
    result.rows = summary_rows(runs)
    result.compare(runs, "shardwriter", "tarfile", "ShardWriter / tarfile alone (MB/s)", 0.9, per="bytes")
    label = "ShardWriter / tarfile + fsync + rename (MB/s)"
    result.compare(runs, "shardwriter", "tarfile-fsync", label, per="bytes")
    result.compare(runs, "shardwriter", "wds-tarwriter", "ShardWriter / webdataset TarWriter alone", per="bytes")
    label = "proposed fix: overlapped hash + fsync / tarfile alone (MB/s)"
    result.compare(runs, "shardwriter-overlapped", "tarfile", label, 0.9, per="bytes")
    label = "proposed fix: gain of the shard writer"
    result.compare(runs, "shardwriter-overlapped", "shardwriter", label, per="bytes")
    label = "tarfile + fsync / tarfile (cost of durability)"
    result.compare(runs, "tarfile-fsync", "tarfile", label, per="bytes")
    result.notes.append(f"written to {scratch} (same filesystem as the release); page cache absorbs writes not fsynced")
    return result


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__, rounds=5)
    release_options(p)
    p.add_argument("--write-mb", type=float, default=400.0, help="MB of samples to write per run")
    p.add_argument("--per-shard", type=int, default=100)
    args = p.parse_args(argv)
    run(args).report(args.out, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

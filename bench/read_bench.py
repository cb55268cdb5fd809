"""Read path: `acav1m_hf.stream` against raw tar, webdataset, HF ``datasets`` and the decode-only limit, same shards.

Undecoded (every shard of the release, every member):

* ``raw-tar-stream`` / ``raw-tar-seek``: ``tarfile`` reading every member's
  bytes in order (``r|`` stream mode, as webdataset reads, and ``r:``); the
  faster of the two is *the limit*;
* ``wds``: ``webdataset.WebDataset`` without decoding;
* ``stream-raw``: ``acav1m_hf.stream(decode=False)``;
* ``hf-stream-raw``: ``load_dataset(root, streaming=True).decode(False)``
  (the builder still parses ``json`` and ``npy``), and ``hf-stream`` with the
  default decoding (lazy torchcodec video/audio objects, PIL images);
* ``hf-dataset-rows`` / ``hf-dataset-arrow``: the non-streaming ``load_dataset``,
  its one-off Arrow preparation timed on its own, then all rows read back
  (Python rows with media decoding off, and Arrow batches).

Decoded (a subset of the same samples, re-packed into small shards so that
the DataLoader cases have several shards per worker):

* ``stream-decoded``: ``acav1m_hf.stream(decode=True, fps, size)`` in-process;
* ``decode-only-pyav`` / ``decode-only-torchcodec``: the same members, read into
  memory beforehand, decoded directly (video frames at ``fps`` with the
  shorter side scaled to ``size`` and a center crop, FLAC with soundfile,
  images with PIL, json, npy, txt): the faster is *the decode-only limit*;
  ``decode-only-acav``: `acav1m_hf.streaming`'s own decoders on the in-memory
  members (the decoding cost without the pipeline around it);
* ``dl1-decoded`` / ``dl2-decoded``: a ``torch.utils.data.DataLoader`` over the
  decoded stream with 1 and 2 workers (batch 8, `acav1m_hf.streaming.collate`).

Page cache: all shards are read once before the first round (the release fits
in memory many times over), so every reader starts warm.

    .venv/bin/python bench/read_bench.py --size-gb 1 --out bench/out
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    Result,
    bench_parser,
    machine_line,
    page_cache_fits,
    paired_rounds,
    summary_rows,
    warm,
)
from bench.gen_shards import ensure_release, release_options  # noqa: E402

UNDECODED = (
    "fast-tar",
    "stream-raw-fasttar",
    "raw-tar-stream",
    "raw-tar-seek",
    "wds",
    "stream-raw",
    "hf-stream-raw",
    "hf-stream",
    "hf-dataset-rows",
    "hf-dataset-arrow",
)
DECODED = (
    "stream-decoded-fixed",
    "dl1-decoded-fixed",
    "dl2-decoded-fixed",
    "stream-decoded",
    "decode-only-pyav",
    "decode-only-torchcodec",
    "decode-only-acav",
    "dl1-decoded",
    "dl2-decoded",
)


# --------------------------------------------------------------------------- undecoded readers


def _key(name: str) -> str:
    return name.rsplit("/", 1)[-1].split(".", 1)[0]


def raw_tar(shards: list[Path], mode: str = "r|") -> tuple[int, int]:
    """Every member of every shard read with ``tarfile`` alone: (samples, member bytes)."""
    samples, nbytes, last = 0, 0, None
    for path in shards:
        with tarfile.open(path, mode) as tar:
            for member in tar:
                if not member.isreg():
                    continue
                data = tar.extractfile(member).read()
                nbytes += len(data)
                key = _key(member.name)
                if key != last:
                    samples, last = samples + 1, key
                if mode.startswith("r|"):
                    tar.members = []
    return samples, nbytes


def _count(iterable: Any) -> tuple[int, int]:
    samples, nbytes = 0, 0
    for sample in iterable:
        samples += 1
        for value in sample.values():
            if isinstance(value, (bytes, bytearray, memoryview)):
                nbytes += len(value)
    return samples, nbytes


def wds_raw(shards: list[Path]) -> tuple[int, int]:
    import webdataset as wds

    return _count(wds.WebDataset([str(p) for p in shards], shardshuffle=False, empty_check=False))


def stream_raw(root: Path) -> tuple[int, int]:
    from acav1m_hf.streaming import stream

    return _count(stream(root, decode=False))


# A prototype of the fix proposed for `acav1m_hf.streaming.stream`'s undecoded path: read the tars with one
# buffered sequential pass (1 MiB reads, headers parsed from 512-byte blocks) instead of webdataset's
# `tar_file_iterator` (tarfile in "r|*" stream mode: 10 KiB reads and a Python checksum per header).


class _NotPlain(Exception):
    """A tar entry this reader does not handle (long names, pax headers...): fall back to tarfile."""


def fast_tar_members(path: str | Path, bufsize: int = 1 << 20) -> Any:
    """(name, bytes) of every regular file of a ustar/GNU tar with short names, in order, checksums verified."""
    with open(path, "rb", buffering=bufsize) as f:
        while True:
            header = f.read(512)
            if len(header) < 512 or header[0] == 0:
                return
            stored = int(header[148:156].split(b"\0", 1)[0].strip() or b"0", 8)
            if stored != sum(header) - sum(header[148:156]) + 256:
                raise ValueError(f"{path}: bad tar header checksum")
            if header[124] & 0x80:
                raise _NotPlain("base-256 size")
            size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
            kind = header[156:157]
            data = f.read(size)
            f.read(-size % 512)
            if kind in (b"0", b"\0"):
                name = header[:100].split(b"\0", 1)[0]
                prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
                yield (prefix + b"/" + name if prefix else name).decode("utf-8"), data
            elif kind in (b"L", b"K", b"x", b"g"):
                raise _NotPlain(f"tar entry of type {kind!r}")


def fast_tar_samples(url: str, select: Any = None) -> Any:
    """Samples (webdataset's grouping: key = path up to the first dot of the basename) of one shard."""
    sample: dict[str, Any] | None = None
    for name, data in fast_tar_members(url):
        if select is not None and not select(name):
            continue
        slash = name.rfind("/")
        dot = name.find(".", slash + 1)
        if dot < 0:
            continue
        key, ext = name[:dot], name[dot + 1 :].lower()
        if sample is None or sample["__key__"] != key:
            if sample is not None:
                yield sample
            sample = {"__key__": key, "__url__": url}
        sample[ext] = data
    if sample is not None:
        yield sample


def fast_tar(shards: list[Path]) -> tuple[int, int]:
    """The prototype reader alone over every shard: (samples, member bytes)."""
    samples, nbytes = 0, 0
    for path in shards:
        for sample in fast_tar_samples(str(path)):
            samples += 1
            nbytes += sum(len(v) for k, v in sample.items() if not k.startswith("__"))
    return samples, nbytes


def fast_stream(root: Path) -> Any:
    """`acav1m_hf.stream(decode=False)`'s pipeline (node and worker splits, schema members only, `raw_members`) on the prototype."""
    import webdataset as wds

    from acav1m_hf.schema import MEMBER_EXTENSIONS
    from acav1m_hf.streaming import resolve_shards
    from acav1m_hf.streaming.decode import raw_members

    urls = resolve_shards(root)

    def select(name: str) -> bool:
        return name.rsplit("/", 1)[-1].partition(".")[2].lower() in MEMBER_EXTENSIONS

    def expand(source: Any) -> Any:
        for item in source:
            yield from fast_tar_samples(item["url"], select)

    return wds.DataPipeline(
        wds.SimpleShardList(urls), wds.split_by_node, wds.split_by_worker, expand, wds.map(raw_members)
    )


def stream_raw_fasttar(root: Path) -> tuple[int, int]:
    return _count(fast_stream(root))


def hf_stream(root: Path, decode: bool) -> tuple[int, int]:
    from datasets import load_dataset

    dataset = load_dataset(str(root), split="train", streaming=True)
    if not decode:
        dataset = dataset.decode(False)
    samples = 0
    for example in dataset:
        samples += 1
        if decode:  # touch the decoded media the way a training loop would find them
            example["flac"]
            example["mp4"]
    return samples, 0


def _media_columns(features: Any) -> list[str]:
    from datasets import Audio, Image, Video

    return [name for name, f in features.items() if isinstance(f, (Audio, Image, Video))]


def hf_prepare(root: Path, cache_dir: Path) -> tuple[Any, float]:
    """The non-streaming ``load_dataset`` into an empty cache (tar -> Arrow); (dataset, seconds)."""
    from datasets import load_dataset

    start = time.perf_counter()
    dataset = load_dataset(str(root), split="train", cache_dir=str(cache_dir))
    return dataset, time.perf_counter() - start


def hf_dataset_rows(root: Path, cache_dir: Path) -> tuple[int, int]:
    """Load from the prepared cache and read every row as Python, media left as bytes."""
    from datasets import load_dataset

    dataset = load_dataset(str(root), split="train", cache_dir=str(cache_dir))
    for name in _media_columns(dataset.features):
        feature = dataset.features[name]
        dataset = dataset.cast_column(name, type(feature)(decode=False))
    samples = 0
    for _ in dataset:
        samples += 1
    return samples, 0


def hf_dataset_arrow(root: Path, cache_dir: Path) -> tuple[int, int]:
    """Load from the prepared cache and read every row as Arrow batches (memory-mapped, zero-copy)."""
    from datasets import load_dataset

    dataset = load_dataset(str(root), split="train", cache_dir=str(cache_dir)).with_format("arrow")
    samples, nbytes = 0, 0
    for batch in dataset.iter(batch_size=64):
        samples += batch.num_rows
        nbytes += batch.nbytes
    return samples, nbytes


# --------------------------------------------------------------------------- decoding


def load_members(shards: list[Path]) -> list[dict[str, bytes]]:
    """Every sample of ``shards`` as {extension: bytes}, in memory (outside any timing)."""
    samples: list[dict[str, bytes]] = []
    last = None
    for path in shards:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isreg():
                    continue
                key, ext = _key(member.name), member.name.rsplit("/", 1)[-1].split(".", 1)[1]
                if key != last:
                    samples.append({})
                    last = key
                samples[-1][ext] = tar.extractfile(member).read()
    return samples


def _scaled(width: int, height: int, size: int) -> tuple[int, int]:
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def pyav_video(data: bytes, fps: float, size: int, threads: int | None = None) -> np.ndarray:
    """Frames at ``fps`` (the last frame shown at or before each k/fps), shorter side to ``size``, center square.

    One ``VideoReformatter`` (one swscale context) serves every frame of the clip: ``frame.reformat()`` and
    ``frame.to_ndarray(width=...)`` make a new one per frame, which with FFmpeg 8's swscale costs more than
    decoding the frame. ``threads`` goes to swscale (None: as many as cores).
    """
    import av
    from av.video.reformatter import VideoReformatter

    out: list[np.ndarray] = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        width, height = _scaled(stream.codec_context.width, stream.codec_context.height, size)
        top, left = (height - size) // 2, (width - size) // 2
        reformatter = VideoReformatter()
        step, k, origin, previous, last = 1.0 / fps, 0, None, None, 0.0
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            origin = frame.time if origin is None else origin
            t = frame.time - origin
            if previous is not None and k * step < t - 1e-6:
                rgb = reformatter.reformat(
                    previous, width=width, height=height, format="rgb24", threads=threads
                ).to_ndarray()
                rgb = rgb[top : top + size, left : left + size]
                while k * step < t - 1e-6:
                    out.append(rgb)
                    k += 1
            previous, last = frame, t
        rate = float(stream.average_rate or fps)
        if previous is not None:
            rgb = reformatter.reformat(
                previous, width=width, height=height, format="rgb24", threads=threads
            ).to_ndarray()
            rgb = rgb[top : top + size, left : left + size]
            while k * step < last + 1.0 / rate - 1e-6:
                out.append(rgb)
                k += 1
    return np.stack(out)


def torchcodec_video(data: bytes, fps: float, size: int) -> Any:
    """The same frames with torchcodec: resize and crop inside the decoder, frames picked by presentation time."""
    import torch
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import CenterCrop, Resize

    probe = VideoDecoder(data, seek_mode="approximate")
    meta = probe.metadata
    width, height = _scaled(meta.width, meta.height, size)
    decoder = VideoDecoder(
        data, seek_mode="approximate", transforms=[Resize((height, width)), CenterCrop((size, size))]
    )
    begin = meta.begin_stream_seconds or 0.0
    end = meta.end_stream_seconds or (begin + (meta.duration_seconds or 0.0))
    n = int(np.ceil((end - begin) * fps - 1e-6))
    times = [min(begin + k / fps, end - 1e-3) for k in range(n)]
    return decoder.get_frames_played_at(seconds=times).data if times else torch.empty(0)


def _other_members(sample: dict[str, bytes]) -> None:
    import soundfile as sf
    from PIL import Image

    sf.read(io.BytesIO(sample["flac"]), dtype="float32", always_2d=True)
    json.loads(sample["json"])
    sample.get("txt", b"").decode("utf-8")
    with Image.open(io.BytesIO(sample["jpg"])) as image:
        np.asarray(image.convert("RGB"))
    if "mask.png" in sample:
        with Image.open(io.BytesIO(sample["mask.png"])) as image:
            np.asarray(image.convert("L"))
    if "npy" in sample:
        np.load(io.BytesIO(sample["npy"]), allow_pickle=False)


def decode_only(
    samples: list[dict[str, bytes]], video: Callable[[bytes, float, int], Any], fps: float, size: int
) -> tuple[int, int]:
    nbytes = 0
    for sample in samples:
        video(sample["mp4"], fps, size)
        _other_members(sample)
        nbytes += sum(len(v) for v in sample.values())
    return len(samples), nbytes


def decode_only_acav(samples: list[dict[str, bytes]], fps: float, size: int) -> tuple[int, int]:
    from acav1m_hf.streaming import SampleDecoder

    decoder = SampleDecoder(fps=fps, size=size)
    nbytes = 0
    for i, sample in enumerate(samples):
        decoder({"__key__": str(i), "__url__": "memory", **sample})
        nbytes += sum(len(v) for v in sample.values())
    return len(samples), nbytes


class FixedSampleDecoder:
    """`acav1m_hf.streaming.SampleDecoder` with the proposed video fix: one swscale context per clip, and a
    single-threaded one inside a DataLoader worker (where the workers already occupy the cores).

    Everything else is the module's own decoding; the frames are byte-identical to `decode_video`'s.
    """

    def __init__(self, fps: float, size: int) -> None:
        from acav1m_hf.streaming import SampleDecoder

        self.inner = SampleDecoder(fps=fps, size=size, video=False)
        self.fps, self.size = fps, size

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        import torch
        from torch.utils.data import get_worker_info

        out = self.inner(sample)
        if out.get("mp4") is not None:
            frames = pyav_video(out["mp4"], self.fps, self.size, threads=1 if get_worker_info() is not None else None)
            out["mp4"] = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
        return out


def fixed_stream(shards: list[Path], fps: float, size: int) -> Any:
    """``stream(decode=False)`` mapped through `FixedSampleDecoder`: the decoded stream as it would be with the fix."""
    from acav1m_hf.streaming import stream

    return stream([str(p) for p in shards], decode=False).map(FixedSampleDecoder(fps, size))


def stream_decoded_fixed(shards: list[Path], fps: float, size: int) -> tuple[int, int]:
    samples = 0
    for sample in fixed_stream(shards, fps, size):
        samples += 1
        assert sample["mp4"].shape[-1] == size
    return samples, 0


def stream_decoded(shards: list[Path], fps: float, size: int) -> tuple[int, int]:
    from acav1m_hf.streaming import stream

    samples = 0
    for sample in stream([str(p) for p in shards], fps=fps, size=size):
        samples += 1
        assert sample["mp4"].shape[-1] == size
    return samples, 0


def dataloader_decoded(
    shards: list[Path], fps: float, size: int, workers: int, batch_size: int = 8, fixed: bool = False
) -> tuple[int, int]:
    from torch.utils.data import DataLoader

    from acav1m_hf.streaming import collate, stream

    dataset = fixed_stream(shards, fps, size) if fixed else stream([str(p) for p in shards], fps=fps, size=size)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate)
    samples = 0
    for batch in loader:
        samples += len(batch["__key__"])
    return samples, 0


def repack(shards: list[Path], folder: Path, clips: int, per_shard: int) -> list[Path]:
    """The first ``clips`` samples of ``shards`` re-written as tars of ``per_shard`` samples (byte-identical members)."""
    import webdataset as wds

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    samples = []
    for path in shards:
        samples += [s for s in load_members([path])]
        if len(samples) >= clips:
            break
    samples = samples[:clips]
    out: list[Path] = []
    for n in range(0, len(samples), per_shard):
        path = folder / f"train-{n // per_shard:05d}.tar"
        with wds.TarWriter(str(path), encoder=False, mtime=0) as tar:
            for i, sample in enumerate(samples[n : n + per_shard]):
                key = json.loads(sample["json"])["key"] if "json" in sample else f"s{n + i:07d}"
                tar.write({"__key__": key, **sample})
        out.append(path)
    return out


# --------------------------------------------------------------------------- main


def preimport() -> None:
    """Import every library a case uses before any timing, so that no case's first round pays for imports."""
    import av  # noqa: F401
    import datasets  # noqa: F401
    import soundfile  # noqa: F401
    import torch  # noqa: F401
    import torchcodec.decoders  # noqa: F401
    import torchcodec.transforms  # noqa: F401
    import webdataset  # noqa: F401
    from PIL import Image  # noqa: F401

    import acav1m_hf.streaming  # noqa: F401


def run(args: argparse.Namespace) -> Result:
    root = ensure_release(args.out, args.size_gb, args.clip_seconds, args.samples_per_shard)
    shards = sorted((root / "data").glob("train-*.tar"))
    only = set(args.only.split(",")) if args.only else None
    want = (lambda name: name in only) if only else (lambda name: True)
    result = Result("read", params={k: str(v) for k, v in vars(args).items()})
    print(machine_line())
    print(f"release: {root} ({len(shards)} shards, {sum(p.stat().st_size for p in shards) / 1e6:.0f} MB)")
    preimport()

    decoded_shards = repack(shards, args.out / "decoded-subset", args.decoded_clips, args.decoded_per_shard)
    all_files = shards + decoded_shards
    if not page_cache_fits(all_files):
        result.notes.append("the shards do not fit in half the free memory: the page cache may not stay warm")
    nbytes, seconds = warm(all_files)
    result.figures["warm-up pass over every shard (8 MB reads), MB/s"] = round(nbytes / 1e6 / seconds, 1)
    result.notes.append("page cache: every shard read once before the first round; all readers run warm")

    cache_dir = Path(tempfile.mkdtemp(prefix="hf-cache-", dir=args.out))
    try:
        if want("hf-dataset-rows") or want("hf-dataset-arrow"):
            _, seconds = hf_prepare(root, cache_dir)
            payload = sum(p.stat().st_size for p in shards)
            result.figures["load_dataset (non-streaming) Arrow preparation, s"] = round(seconds, 2)
            result.figures["load_dataset (non-streaming) Arrow preparation, MB/s of shards"] = round(
                payload / 1e6 / seconds, 1
            )

        undecoded: dict[str, Callable[[], tuple[int, int]]] = {
            "fast-tar": lambda: fast_tar(shards),
            "stream-raw-fasttar": lambda: stream_raw_fasttar(root),
            "raw-tar-stream": lambda: raw_tar(shards, "r|"),
            "raw-tar-seek": lambda: raw_tar(shards, "r:"),
            "wds": lambda: wds_raw(shards),
            "stream-raw": lambda: stream_raw(root),
            "hf-stream-raw": lambda: hf_stream(root, decode=False),
            "hf-stream": lambda: hf_stream(root, decode=True),
            "hf-dataset-rows": lambda: hf_dataset_rows(root, cache_dir),
            "hf-dataset-arrow": lambda: hf_dataset_arrow(root, cache_dir),
        }
        undecoded = {k: v for k, v in undecoded.items() if want(k)}
        runs = {}
        if undecoded:
            print(f"undecoded: {len(undecoded)} cases x {args.rounds} rounds over {len(shards)} shards")
            runs.update(paired_rounds(undecoded, args.rounds))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    members = load_members(decoded_shards) if any(want(k) for k in DECODED if k.startswith("decode-only")) else []
    fps, size = args.fps, args.frame_size
    decoded: dict[str, Callable[[], tuple[int, int]]] = {
        "stream-decoded-fixed": lambda: stream_decoded_fixed(decoded_shards, fps, size),
        "dl1-decoded-fixed": lambda: dataloader_decoded(decoded_shards, fps, size, 1, fixed=True),
        "dl2-decoded-fixed": lambda: dataloader_decoded(decoded_shards, fps, size, 2, fixed=True),
        "stream-decoded": lambda: stream_decoded(decoded_shards, fps, size),
        "decode-only-pyav": lambda: decode_only(members, pyav_video, fps, size),
        "decode-only-torchcodec": lambda: decode_only(members, torchcodec_video, fps, size),
        "decode-only-acav": lambda: decode_only_acav(members, fps, size),
        "dl1-decoded": lambda: dataloader_decoded(decoded_shards, fps, size, 1),
        "dl2-decoded": lambda: dataloader_decoded(decoded_shards, fps, size, 2),
    }
    decoded = {k: v for k, v in decoded.items() if want(k)}
    if decoded:
        print(
            f"decoded ({fps:g} fps, {size}x{size} frames + audio + images): {len(decoded)} cases x "
            f"{args.decoded_rounds} rounds over {len(decoded_shards)} shards of {args.decoded_per_shard} clips"
        )
        runs.update(paired_rounds(decoded, args.decoded_rounds))

    _fill_bytes(runs)
    result.rows = summary_rows(runs)
    _ratios(result, runs)
    return result


def _fill_bytes(runs: dict[str, Any]) -> None:
    """Readers that parse members (HF) cannot count bytes: give them the payload of the same samples."""
    undecoded_bytes = next((r[0].bytes for n, r in runs.items() if n.startswith("raw-tar") and r), 0)
    decoded_bytes = next((r[0].bytes for n, r in runs.items() if n.startswith("decode-only") and r), 0)
    for name, case_runs in runs.items():
        for run in case_runs:
            if run.bytes == 0:
                run.bytes = decoded_bytes if name in DECODED else undecoded_bytes


def _ratios(result: Result, runs: dict[str, Any]) -> None:
    if "raw-tar-stream" in runs and "raw-tar-seek" in runs:
        limit_name = "raw-tar-limit"
        runs[limit_name] = [
            a if a.seconds <= b.seconds else b
            for a, b in zip(runs["raw-tar-stream"], runs["raw-tar-seek"], strict=True)
        ]
        for name, label, goal in (
            ("stream-raw", "acav1m stream, undecoded / raw tar read (limit)", 0.9),
            ("stream-raw-fasttar", "proposed fix: stream on a 1-MiB buffered tar reader / raw tar read", 0.9),
            ("fast-tar", "that tar reader alone / tarfile raw read", None),
            ("wds", "webdataset, undecoded / raw tar read", None),
            ("hf-stream-raw", "HF streaming, decode off / raw tar read", None),
            ("hf-stream", "HF streaming, default decoding / raw tar read", None),
            ("hf-dataset-rows", "HF Dataset (prepared), rows / raw tar read", None),
            ("hf-dataset-arrow", "HF Dataset (prepared), Arrow batches / raw tar read", None),
        ):
            result.compare(runs, name, limit_name, label, goal)
        result.compare(runs, "stream-raw-fasttar", "stream-raw", "proposed fix: gain of the undecoded stream")
        result.compare(runs, "stream-raw", "wds", "acav1m stream, undecoded / webdataset")
        result.compare(runs, "stream-raw", "hf-stream-raw", "acav1m stream, undecoded / HF streaming (decode off)")
        del runs[limit_name]
    if "decode-only-pyav" in runs and "decode-only-torchcodec" in runs:
        runs["decode-only-limit"] = [
            a if a.seconds <= b.seconds else b
            for a, b in zip(runs["decode-only-pyav"], runs["decode-only-torchcodec"], strict=True)
        ]
        label = "acav1m stream, decoded / decode-only limit"
        result.compare(runs, "stream-decoded", "decode-only-limit", label, 0.8)
        label = "proposed fix: stream, decoded / decode-only limit"
        result.compare(runs, "stream-decoded-fixed", "decode-only-limit", label, 0.8)
        del runs["decode-only-limit"]
    result.compare(runs, "stream-decoded-fixed", "stream-decoded", "proposed fix: gain of the decoded stream")
    label = "acav1m stream, decoded / its own decoders on in-memory bytes"
    result.compare(runs, "stream-decoded", "decode-only-acav", label)
    result.compare(runs, "decode-only-torchcodec", "decode-only-pyav", "torchcodec / PyAV decode-only")
    result.compare(runs, "dl2-decoded", "dl1-decoded", "DataLoader, decoded: 2 workers / 1 worker", 1.7)
    label = "proposed fix: DataLoader, decoded: 2 workers / 1 worker"
    result.compare(runs, "dl2-decoded-fixed", "dl1-decoded-fixed", label, 1.7)
    result.compare(runs, "dl1-decoded", "stream-decoded", "DataLoader 1 worker / in-process stream, decoded")


def parser() -> argparse.ArgumentParser:
    only = f"comma-separated cases ({', '.join(UNDECODED + DECODED)})"
    p = bench_parser(__doc__, rounds=5, only=only, rounds_help="paired rounds of the undecoded cases")
    release_options(p)
    p.add_argument("--decoded-rounds", type=int, default=5, help="paired rounds of the decoded cases")
    p.add_argument("--decoded-clips", type=int, default=96, help="clips in the decoded subset")
    p.add_argument("--decoded-per-shard", type=int, default=6, help="clips per shard of the decoded subset")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--frame-size", type=int, default=224)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run(args).report(args.out, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

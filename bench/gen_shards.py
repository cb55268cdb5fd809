"""Generate (and cache) a benchmark release: realistic ACAV-1M shards of real-codec clips, with a card and an index.

Every clip is ``--clip-seconds`` long (10 s by default) and distinct: five in
six are cut from the bundled sample videos (``acav1m_hf/sample_data``, decoded
by `curation.decode` at the pipeline's 384-pixel size and frame rate, looped
back and forth to the clip length from a clip-dependent start, mirrored every
other time and with a clip-dependent brightness curve), one in six is a fresh
synthetic scene (`tests.synthetic.make_clip`). Each sample has every member of
the schema, encoded by the pipeline's own encoders (`curation.encode`: H.264 +
AAC mp4, 16 kHz FLAC, JPEG keyframe, PNG mask, float32 npy), schema-valid
metadata with a distinct video id, and a caption; samples are written by
`curation.writer.ShardWriter` into ``data/train-{n:05d}.tar`` (all in the train
split) with the Parquet index, ``report.json``, the dataset card (so that
``load_dataset`` reads the folder) and ``croissant.json``.

The release is cached in ``OUT/release-{size}gb-{seconds}s/`` and reused while
its parameters match (``bench-release.json``).

    .venv/bin/python bench/gen_shards.py --size-gb 1 --out bench/out
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DEFAULT_OUT, REPO, machine_line, shard_writer  # noqa: E402

MARKER = "bench-release.json"
GENERATOR_VERSION = 1
"""Bump when the generated content changes, so that cached releases are rebuilt."""
SAMPLE_DATA = REPO / "acav1m_hf" / "sample_data"
SYNTHETIC_EVERY = 6
CAPTIONS = (
    "A large animated rabbit stands in a sunny meadow, with ambient outdoor sound and music.",
    "A LEGO model on a table is filmed while its mechanism runs with an audible mechanical sound.",
    "Two blue discs slide towards each other and apart; a short beep sounds as they separate.",
    "A room with plants by a window with quiet room sound.",
    "A cockatoo moves its head while a soundtrack plays.",
)


@dataclass
class Source:
    name: str
    frames: np.ndarray
    fps: float
    audio: np.ndarray
    caption: str


_SOURCES: list[Source] | None = None


def _load_sources() -> list[Source]:
    """The bundled sample videos decoded like the pipeline decodes them (first clip of each, 384-pixel side)."""
    from curation.config import CurationConfig
    from curation.decode import decode_clips
    from curation.records import InputItem

    config = CurationConfig(clip_seconds=10.0)
    names = (
        "bbb_excerpt.mkv",
        "techslides_small.mp4",
        "psychtoolbox_dualdiscs.mov",
        "imageio_realshort.mp4",
        "imageio_cockatoo_silent.mp4",
    )
    sources = []
    for name, caption in zip(names, CAPTIONS, strict=True):
        clip = next(decode_clips(InputItem(str(SAMPLE_DATA / name), name.split(".")[0]), config))
        sources.append(Source(name, clip.frames, clip.fps, clip.audio, caption))
    # The cockatoo's soundtrack is digital silence, which curation would reject: dub it with the rabbit's.
    sources[4].audio = sources[0].audio
    return sources


def _sources() -> list[Source]:
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = _load_sources()
    return _SOURCES


def _looped(n_source: int, n_out: int, start: int) -> np.ndarray:
    """Indices that play ``n_source`` frames back and forth (ping-pong) from ``start``, ``n_out`` of them."""
    if n_source == 1:
        return np.zeros(n_out, dtype=np.int64)
    period = 2 * n_source - 2
    idx = (np.arange(n_out) + start) % period
    return np.where(idx < n_source, idx, period - idx)


def _ellipse_mask(height: int, width: int, box: list[float]) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
    rx, ry = max(1.0, (box[2] - box[0]) / 2 * width), max(1.0, (box[3] - box[1]) / 2 * height)
    return ((((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) <= 1.0).astype(np.uint8) * 255


def clip_media(i: int, clip_seconds: float) -> tuple[np.ndarray, float, np.ndarray, str, str, tuple[float, float]]:
    """Frames (T, H, W, 3), fps, 16-kHz audio, caption, source name and sounding position of clip ``i``."""
    rng = np.random.default_rng(i)
    if i % SYNTHETIC_EVERY == SYNTHETIC_EVERY - 1:
        from tests.synthetic import make_clip

        position = (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)))
        clip = make_clip(seconds=clip_seconds, fps=25, seed=i, size=(288, 384), position=position)
        caption = "A white blob flashes in sync with clicks over a textured background."
        return clip.frames, clip.fps, clip.audio, caption, "synthetic", position
    sources = _sources()
    source = sources[(i - i // SYNTHETIC_EVERY) % len(sources)]
    n_out = max(1, int(round(clip_seconds * source.fps)))
    start = int(rng.integers(0, 2 * len(source.frames)))
    frames = source.frames[_looped(len(source.frames), n_out, start)]
    if rng.integers(2):
        frames = frames[:, :, ::-1]
    gamma = float(rng.uniform(0.8, 1.25))
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    frames = np.ascontiguousarray(lut[frames])
    n_audio = int(round(clip_seconds * 16_000))
    audio = np.resize(source.audio, max(n_audio, 1))[:n_audio]
    audio = (np.roll(audio, int(rng.integers(0, max(1, len(audio))))) * rng.uniform(0.6, 1.4)).astype(np.float32)
    position = (float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.25, 0.75)))
    return frames, source.fps, audio, source.caption, source.name, position


def metadata_for(
    i: int,
    key: str,
    video_id: str,
    source: str,
    caption: str,
    shape: tuple[int, int],
    fps: float,
    seconds: float,
    position: tuple[float, float],
) -> dict[str, Any]:
    """Schema-valid metadata of bench clip ``i`` (scores drawn from a seeded generator; every 10th clip flagged)."""
    from acav1m_hf.schema import AUDIO_SAMPLE_RATE, SCHEMA_VERSION

    rng = np.random.default_rng(1_000_000 + i)
    height, width = shape
    filters: dict[str, Any] = {}
    for name, threshold in (("language", 0.5), ("instance", 0.5), ("temporal", 0.5)):
        score = round(float(rng.beta(5, 2)), 6)
        if name == "instance" and i % 10 == 3:
            score = round(float(rng.uniform(0.0, 0.45)), 6)
        filters[name] = {
            "score": score,
            "raw": round(2 * score - 1, 6),
            "threshold": threshold,
            "passed": score >= threshold,
            "reason": None,
        }
    filters["temporal"]["windows"] = [round(float(v), 6) for v in rng.uniform(0.3, 1.0, int(seconds))]
    flags = sorted(n for n, f in filters.items() if f["passed"] is not True)
    half = (float(rng.uniform(0.08, 0.2)), float(rng.uniform(0.08, 0.2)))
    box = [
        round(max(0.0, position[0] - half[0]), 6),
        round(max(0.0, position[1] - half[1]), 6),
        round(min(1.0, position[0] + half[0]), 6),
        round(min(1.0, position[1] + half[1]), 6),
    ]
    return {
        "key": key,
        "split": "train",
        "source": {
            "video_id": video_id,
            "path": f"bench://{source}/{video_id}",
            "start": 0.0,
            "end": round(seconds, 6),
            "license": "CC-BY-4.0",
            "text": caption,
            "title": None,
            "uploader": None,
            "upload_date": None,
        },
        "clip": {
            "duration": round(seconds, 6),
            "fps": round(fps, 6),
            "width": int(width),
            "height": int(height),
            "sample_rate": AUDIO_SAMPLE_RATE,
        },
        "caption": {"text": caption, "origin": "manifest", "descriptions": [], "transcript": None, "reason": None},
        "alignment": {
            **filters,
            "sync": {
                "offset": round(float(rng.normal(0, 0.04)), 4),
                "confidence": round(float(rng.uniform(0.5, 1.0)), 4),
                "realigned": False,
                "reason": None,
            },
            "flags": flags,
            "passed": not flags,
        },
        "labels": {
            "category": {"label": source, "id": i % 7, "score": round(float(rng.uniform(0.3, 1.0)), 4), "reason": None},
            "localization": {"peak": [round(position[0], 6), round(position[1], 6)], "box": box, "reason": None},
            "mask": {"present": True, "reason": None},
        },
        "embeddings": {"present": True, "rows": ["audio", "visual", "text"], "model": "bench-random", "reason": None},
        "pipeline": {
            "version": "bench",
            "profile": "bench",
            "schema": SCHEMA_VERSION,
            "models": {
                "captioner": None,
                "condenser": None,
                "transcriber": None,
                "embedder": "bench-random",
                "aligner": None,
            },
        },
    }


def make_sample(i: int, clip_seconds: float) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    """Key, encoded members and metadata of bench clip ``i``."""
    from acav1m_hf.schema import validate_sample
    from curation.encode import encode_flac, encode_jpg, encode_mp4, encode_npy, encode_png_mask
    from curation.sample import sample_key

    frames, fps, audio, caption, source, position = clip_media(i, clip_seconds)
    video_id = f"bench{i:07d}"
    key = sample_key(video_id, 0.0)
    height, width = frames.shape[1:3]
    metadata = metadata_for(i, key, video_id, source, caption, (height, width), fps, len(frames) / fps, position)
    mask = _ellipse_mask(height, width, metadata["labels"]["localization"]["box"])
    embeddings = np.random.default_rng(2_000_000 + i).standard_normal((3, 512)).astype(np.float32)
    members = {
        "mp4": encode_mp4(frames, fps, audio),
        "flac": encode_flac(audio),
        "jpg": encode_jpg(frames[len(frames) // 2]),
        "json": json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode("utf-8"),
        "txt": caption.encode("utf-8"),
        "mask.png": encode_png_mask(mask),
        "npy": encode_npy(embeddings),
    }
    errors = validate_sample(key, members)
    if errors:
        raise AssertionError(f"bench sample {key} is invalid: {errors}")
    return key, members, metadata


def _work(args: tuple[int, float]) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    return make_sample(*args)


def release_dir(out: Path, size_gb: float, clip_seconds: float) -> Path:
    return out / f"release-{size_gb:g}gb-{clip_seconds:g}s"


def _params(size_gb: float, clip_seconds: float, samples_per_shard: int) -> dict[str, Any]:
    return {
        "generator": GENERATOR_VERSION,
        "size_gb": size_gb,
        "clip_seconds": clip_seconds,
        "samples_per_shard": samples_per_shard,
    }


def cached(root: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    marker = root / MARKER
    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    return info if info.get("params") == params else None


def release_options(p: argparse.ArgumentParser) -> None:
    """The options that choose the cached benchmark release (`ensure_release`), the same in every script using it."""
    p.add_argument("--size-gb", type=float, default=1.0, help="size of the benchmark release (generated once, cached)")
    p.add_argument("--clip-seconds", type=float, default=10.0)
    p.add_argument("--samples-per-shard", type=int, default=100)


def ensure_release(
    out: Path,
    size_gb: float,
    clip_seconds: float = 10.0,
    samples_per_shard: int = 100,
    workers: int | None = None,
    croissant: bool = True,
    verbose: bool = True,
) -> Path:
    """The cached release for these parameters, generating it first when needed."""
    root = release_dir(out, size_gb, clip_seconds)
    params = _params(size_gb, clip_seconds, samples_per_shard)
    if cached(root, params):
        return root
    if root.exists():
        shutil.rmtree(root)
    data = root / "data"
    workers = workers or len(os.sched_getaffinity(0))
    target = int(size_gb * 1e9)
    writer = shard_writer(data, samples_per_shard, pattern="train-{:05d}.tar")
    rows: list[dict[str, Any]] = []
    written = 0
    start = time.perf_counter()
    from acav1m_hf.schema import flatten
    from curation.records import Sample

    context = mp.get_context("fork")
    batch = 8 * workers  # Pool.imap would consume an endless iterable eagerly: submit a bounded batch at a time
    i = 0
    with context.Pool(workers) as pool:
        while written < target:
            for key, members, metadata in pool.imap(_work, ((j, clip_seconds) for j in range(i, i + batch))):
                part = writer.write(Sample(key, metadata, members))
                rows.append({"shard": f"data/{Path(part).name}", "key": key, **flatten(metadata)})
                written += sum(len(v) for v in members.values())
                i += 1
                if verbose and i % 100 == 0:
                    elapsed = time.perf_counter() - start
                    print(f"  generated {i} clips, {written / 1e6:.0f} MB in {elapsed:.0f} s", flush=True)
                if written >= target:
                    break
        pool.terminate()
    writer.close()
    _finish(root, rows, clip_seconds, croissant)
    shards = sorted(data.glob("train-*.tar"))
    info = {
        "params": params,
        "clips": len(rows),
        "shards": len(shards),
        "bytes": sum(p.stat().st_size for p in shards),
        "payload_bytes": written,
        "seconds_to_generate": round(time.perf_counter() - start, 1),
    }
    (root / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return root


def _finish(root: Path, rows: list[dict[str, Any]], clip_seconds: float, croissant: bool) -> None:
    """Parquet index, report, card and Croissant, so that the folder is a release `load_dataset` reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from acav1m_hf.release import CROISSANT, REPORT, index_name, list_shards
    from acav1m_hf.schema import arrow_schema

    (root / "metadata").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), root / index_name("train"))
    shards = list_shards(root)["train"]
    report = {
        "acav1m_version": "bench",
        "counts": {"clips": {"total": len(rows), "kept": len(rows), "rejected": 0}},
        "splits": {
            "train": {
                "clips": len(rows),
                "seconds": round(sum(r["clip.duration"] for r in rows), 3),
                "shards": len(shards),
                "bytes": sum(p.stat().st_size for p in shards),
            }
        },
        "config": {"clip_seconds": clip_seconds, "profile": "bench"},
    }
    (root / REPORT).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    try:
        from acav1m_hf.card import write_card

        write_card(root)
    except Exception as exc:  # noqa: BLE001 - the card belongs to another module; without it only load_dataset suffers
        print(f"  warning: no dataset card ({type(exc).__name__}: {exc}); load_dataset will infer features")
    if croissant:
        try:
            from acav1m_hf.croissant import write_croissant

            write_croissant(root)
        except Exception as exc:  # noqa: BLE001
            print(f"  warning: no croissant.json ({type(exc).__name__}: {exc})")
            (root / CROISSANT).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    release_options(parser)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    print(machine_line())
    root = ensure_release(args.out, args.size_gb, args.clip_seconds, args.samples_per_shard, args.workers)
    info = json.loads((root / MARKER).read_text())
    print(
        f"release: {root}\n  clips: {info['clips']}  shards: {info['shards']}  bytes: {info['bytes'] / 1e6:.1f} MB  "
        f"({info['bytes'] / max(1, info['clips']) / 1e3:.0f} KB/clip; generated in {info['seconds_to_generate']} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

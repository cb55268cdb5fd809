"""``acav1m validate``: check a release folder against its own claims.

* every file listed in ``croissant.json`` matches its sha256 (a flipped byte
  names the shard);
* every shard is a plain (uncompressed) tar whose members are all regular
  files named ``{key}.{extension}``, no larger than ``max_member_bytes``
  (`acav1m_hf.schema.check_member`): a member with a folder part, ``..``, an
  absolute path, a link, a device, a FIFO or a directory is refused, naming the
  shard and the member, because an extracting reader (mlcroissant, ``tar -x``)
  would write or read outside its folder;
* every sample of every shard conforms to the schema (`validate_sample`),
  keys are unique and each sample sits in its split's shards;
* the Parquet index lists exactly the samples of the shards, with the same
  metadata;
* the card's YAML declares the schema's features and every split's shards;
* with ``media=True`` (``acav1m validate --media``), every mp4, flac, jpg and
  mask.png member opens and decodes: the mp4's first video and audio frames,
  the flac's first samples, the whole images (`check_media`). Checksums alone
  cannot see a member that was broken before they were computed. Plain
  validation does not decode, so it stays fast.
"""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from acav1m_hf import release
from acav1m_hf.schema import (
    AUDIO_SAMPLE_RATE,
    MAX_MEMBER_BYTES,
    check_member,
    compression,
    flatten,
    hf_features,
    validate_sample,
)


def open_shard(shard: Path, mode: str) -> tarfile.TarFile:
    """``tarfile.open(shard, mode)`` after refusing a compressed file by its magic bytes (never expanded)."""
    with open(shard, "rb") as f:
        kind = compression(f.read(8))
    if kind is not None:
        raise ValueError(f"{kind}-compressed, not a plain tar (shards are never compressed)")
    return tarfile.open(shard, mode)


def check_shard(shard: Path, max_member_bytes: int = MAX_MEMBER_BYTES) -> None:
    """Raise `ValueError` naming the first member of ``shard`` that `check_member` refuses; reads headers only."""
    with open_shard(shard, "r:") as tar:
        for info in tar:
            check_member(info, max_member_bytes)


def iter_samples(shard: Path, max_member_bytes: int = MAX_MEMBER_BYTES) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Samples of a tar shard as ``(key, {extension: bytes})``, grouped like WebDataset (split at the first dot).

    Two adjacent samples with one key come out as two samples, so that duplicate keys are seen, not merged.
    Raises `ValueError` naming the member for a compressed file and for the first member that
    `acav1m_hf.schema.check_member` refuses (checked on its header, before any of its bytes are read).
    """
    key, members = None, {}
    with open_shard(shard, "r|") as tar:
        for info in tar:
            stem, extension = check_member(info, max_member_bytes)
            if stem != key or extension in members:  # a repeated member starts another sample with the same key
                if key is not None:
                    yield key, members
                key, members = stem, {}
            handle = tar.extractfile(info)
            members[extension] = handle.read() if handle else b""
    if key is not None:
        yield key, members


def validate_release(
    root: str | Path, *, media: bool = False, max_member_bytes: int = MAX_MEMBER_BYTES, workers: int | None = None
) -> list[str]:
    """Every problem found in the release at ``root``; an empty list means it is valid.

    ``media`` also decodes every media member (`check_media`) on ``workers`` threads (default: one per CPU), with a
    progress bar on a terminal. ``max_member_bytes`` caps the size of one tar member.
    """
    root = Path(root)
    errors: list[str] = []
    for name in (release.CARD, release.CROISSANT, release.REPORT, release.DATA_DIR, release.METADATA_DIR):
        if not (root / name).exists():
            errors.append(f"{root / name}: missing")
    if errors:
        return errors
    errors += _check_checksums(root)
    shards = release.list_shards(root)
    samples: dict[str, dict[str, Any]] = {}
    with _MediaCheck(media, workers) as decoding:
        for split, paths in shards.items():
            for shard in paths:
                relative = shard.relative_to(root).as_posix()
                try:
                    for key, members in iter_samples(shard, max_member_bytes):
                        decoding.submit(relative, key, members)
                        problems = validate_sample(key, members)
                        errors += [f"{relative}: {p}" for p in problems]
                        if key in samples:
                            errors.append(f"{relative}: key {key} also in {samples[key]['shard']}")
                            continue
                        if problems:
                            continue
                        metadata = json.loads(members["json"])
                        if metadata["split"] != split:
                            errors.append(f"{relative}: {key} has split {metadata['split']!r}")
                        samples[key] = {"shard": relative, "metadata": metadata}
                except ValueError as exc:  # refused by iter_samples: the reason names the member
                    errors.append(f"{relative}: refused, {exc}")
                except (tarfile.TarError, OSError, EOFError) as exc:
                    errors.append(f"{relative}: unreadable tar ({exc})")
        errors += decoding.errors()
    errors += _check_index(root, shards, samples)
    errors += _check_card(root, shards)
    return errors


# --------------------------------------------------------------------------- media


def _decode_mp4(data: bytes) -> None:
    """Open the mp4 and decode its first video frame and its first audio frame (the schema's H.264 + AAC)."""
    import av

    with av.open(io.BytesIO(data)) as container:
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        pending = {"video", "audio"} - {s.type for s in streams}
        if pending:
            raise ValueError(f"no {' or '.join(sorted(pending))} stream")
        pending = {"video", "audio"}
        for packet in container.demux(*streams):
            if packet.stream.type in pending and packet.decode():
                pending.discard(packet.stream.type)
                if not pending:
                    return
    raise ValueError(f"no decodable {' or '.join(sorted(pending))} frame")


def _decode_flac(data: bytes) -> None:
    """Open the flac, check it is 16 kHz mono FLAC and decode its first samples."""
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as audio:
        if (audio.format, audio.samplerate, audio.channels) != ("FLAC", AUDIO_SAMPLE_RATE, 1):
            raise ValueError(f"{audio.format} at {audio.samplerate} Hz, {audio.channels} channel(s)")
        if not len(audio.read(frames=AUDIO_SAMPLE_RATE // 10, dtype="float32")):
            raise ValueError("no samples")


def _decoder(image_format: str, mode: str) -> Callable[[bytes], None]:
    def decode(data: bytes) -> None:
        """Open the image, check its format and mode, and decode all of it (images are small)."""
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            if (image.format, image.mode) != (image_format, mode):
                raise ValueError(f"{image.format} {image.mode}, not {image_format} {mode}")
            image.load()

    return decode


DECODERS: dict[str, Callable[[bytes], None]] = {
    "mp4": _decode_mp4,
    "flac": _decode_flac,
    "jpg": _decoder("JPEG", "RGB"),
    "mask.png": _decoder("PNG", "L"),
}
"""What ``--media`` does with each media member; each raises on a member it cannot decode."""


def check_media(key: str, members: Mapping[str, bytes]) -> list[str]:
    """Decode every media member of one sample; one problem per member that fails, with the decoder's reason."""
    errors = []
    for extension, decode in DECODERS.items():
        if extension in members:
            try:
                decode(members[extension])
            except Exception as exc:  # whatever the decoder raises (FFmpeg, libsndfile, Pillow), the member is broken
                errors.append(f"{key}.{extension}: cannot decode ({type(exc).__name__}: {exc})")
    return errors


class _MediaCheck:
    """`check_media` of every submitted sample on a thread pool (the decoders release the GIL).

    At most a few samples per worker are in flight, so memory stays bounded on any release size; problems come
    back in the order of the shards, whatever the order the threads finish in. Disabled, it does nothing.
    """

    def __init__(self, enabled: bool, workers: int | None) -> None:
        workers = workers or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(workers) if enabled else None
        self.limit = 4 * workers
        self.pending: deque[tuple[str, Future[list[str]]]] = deque()
        self.found: list[str] = []
        self.bar = tqdm(desc="decoding media", unit="sample", disable=None if enabled else True)

    def __enter__(self) -> _MediaCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        self.bar.close()

    def submit(self, shard: str, key: str, members: Mapping[str, bytes]) -> None:
        if self.pool is None:
            return
        media = {e: members[e] for e in DECODERS if e in members}
        self.pending.append((shard, self.pool.submit(check_media, key, media)))
        while len(self.pending) > self.limit:
            self._collect()

    def _collect(self) -> None:
        shard, future = self.pending.popleft()
        self.found += [f"{shard}: {problem}" for problem in future.result()]
        self.bar.update()

    def errors(self) -> list[str]:
        """Every problem found, after waiting for the samples still in flight."""
        while self.pending:
            self._collect()
        return self.found


def _check_checksums(root: Path) -> list[str]:
    try:
        croissant = json.loads((root / release.CROISSANT).read_text())
    except json.JSONDecodeError as exc:
        return [f"{root / release.CROISSANT}: not valid JSON ({exc})"]
    errors = []
    listed = set()
    for entry in croissant.get("distribution", []):
        url, expected = entry.get("contentUrl"), entry.get("sha256")
        if not url or not expected or "://" in url:
            continue
        listed.add(url)
        path = root / url
        if not path.exists():
            errors.append(f"{url}: listed in {release.CROISSANT} but missing")
        elif release.file_sha256(path) != expected:
            errors.append(f"{url}: sha256 differs from {release.CROISSANT} (file corrupted or changed)")
    for paths in release.list_shards(root).values():
        for shard in paths:
            if shard.relative_to(root).as_posix() not in listed:
                errors.append(f"{shard.relative_to(root).as_posix()}: not listed in {release.CROISSANT}")
    return errors


def _check_index(root: Path, shards: dict[str, list[Path]], samples: dict[str, dict[str, Any]]) -> list[str]:
    import pyarrow.parquet as pq

    errors = []
    indexed: set[str] = set()
    for split in shards:
        path = root / release.index_name(split)
        if not path.exists():
            errors.append(f"{release.index_name(split)}: missing")
            continue
        for row in pq.read_table(path).to_pylist():
            key = row["key"]
            if key in indexed:
                errors.append(f"{release.index_name(split)}: {key} has more than one row")
            indexed.add(key)
            found = samples.get(key)
            if found is None:
                errors.append(f"{release.index_name(split)}: {key} is not in any shard")
                continue
            if row["shard"] != found["shard"]:
                errors.append(f"{release.index_name(split)}: {key} is in {found['shard']}, index says {row['shard']}")
            for column, value in flatten(found["metadata"]).items():
                if not _same(row.get(column), value):
                    errors.append(
                        f"{release.index_name(split)}: {key} {column} is {row.get(column)!r}, shard has {value!r}"
                    )
    errors += [f"{samples[k]['shard']}: {k} is missing from the index" for k in sorted(set(samples) - indexed)]
    return errors


def _check_card(root: Path, shards: dict[str, list[Path]]) -> list[str]:
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(root / release.CARD)
    errors = []
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    info = infos.get("default")
    if info is None or info.features != hf_features():
        errors.append(f"{release.CARD}: dataset_info.features differ from the schema")
    configs = {c.get("config_name"): c for c in (card.data.get("configs") or [])}
    declared = {f["split"]: f["path"] for f in configs.get("default", {}).get("data_files", [])}
    for split in shards:
        if split not in declared:
            errors.append(f"{release.CARD}: split {split} has shards but is not in configs.data_files")
    for split in declared:
        if split not in shards:
            errors.append(f"{release.CARD}: split {split} is declared but has no shards")
    return errors


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b

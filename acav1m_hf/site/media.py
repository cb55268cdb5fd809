"""Media for the clip browser: the mp4, mask and keyframe of at most ``max_media`` clips, copied out of their shards.

Copying the media of a million clips into a website would make a second copy of the dataset, so only a budget of
clips, shared by the splits, plays in the site; the others show their metadata and the shard that holds them.
Only the shards of those clips are read, through the same checks as ``acav1m validate`` (`open_shard`,
`check_member`), so a damaged shard stops the build with its name and the reason.
"""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path

from acav1m_hf.schema import KEY_PATTERN, check_member
from acav1m_hf.validate import open_shard

DEFAULT_MAX_MEDIA = 200
MEDIA_MEMBERS = ("mp4", "mask.png", "jpg")
"""The members copied, in the order of their bits in a chunk's ``media`` column (see `media_bits`)."""


def choose_media(root: Path, tables: Mapping[str, tuple[Path, list[str]]], max_media: int) -> dict[str, list[str]]:
    """Keys whose media go into the site, per shard: the first clips of each split, shared fairly.

    Spreading the budget over the splits means a split filter still shows playable clips.
    """
    import pyarrow.parquet as pq

    if max_media <= 0 or not tables:
        return {}
    per_split = {}
    for split, (path, _) in tables.items():
        table = pq.read_table(path, columns=["key", "shard"])
        if table.num_rows > max_media:
            table = table.slice(0, max_media)
        per_split[split] = list(zip(table.column("key").to_pylist(), table.column("shard").to_pylist(), strict=True))
    chosen: list[tuple[str, str]] = []
    position = dict.fromkeys(per_split, 0)
    while len(chosen) < max_media and any(position[s] < len(per_split[s]) for s in per_split):
        for split, rows in per_split.items():
            if position[split] < len(rows) and len(chosen) < max_media:
                chosen.append(rows[position[split]])
                position[split] += 1
    by_shard: dict[str, list[str]] = {}
    for key, shard in chosen:
        if KEY_PATTERN.match(key) and shard and (root / shard).is_file():
            by_shard.setdefault(shard, []).append(key)
    return by_shard


def extract_media(root: Path, out: Path, by_shard: Mapping[str, list[str]]) -> dict[str, set[str]]:
    """Copy the chosen clips' media members from their shards; return key -> members copied."""
    copied: dict[str, set[str]] = {}
    for shard, keys in by_shard.items():
        try:
            _copy_media(root / shard, out / "media", set(keys), copied)
        except ValueError as exc:  # refused by open_shard or check_member, or a clip missing: the reason says which
            raise ValueError(f"{shard}: {exc}") from exc
        except (tarfile.TarError, EOFError) as exc:
            raise ValueError(f"{shard}: unreadable tar ({exc})") from exc
    return copied


def _copy_media(shard: Path, media: Path, wanted: set[str], copied: dict[str, set[str]]) -> None:
    with open_shard(shard, "r:") as tar:
        for member in tar:
            key, ext = check_member(member)
            if key not in wanted or ext not in MEDIA_MEMBERS:
                continue
            with tar.extractfile(member) as source, open(media / f"{key}.{ext}", "wb") as target:
                shutil.copyfileobj(source, target)
            copied.setdefault(key, set()).add(ext)
    missing = sorted(k for k in wanted if "mp4" not in copied.get(k, ()))
    if missing:  # tarfile ends quietly at a cut between two members
        raise ValueError(f"no mp4 for {missing[0]}, which the index puts in it (truncated, or not the indexed shard)")


def media_bits(members: set[str]) -> int:
    """Bit 0: mp4, bit 1: mask.png, bit 2: jpg copied into media/."""
    return sum(1 << i for i, ext in enumerate(MEDIA_MEMBERS) if ext in members)

"""The layout of a release folder (a complete Hub dataset repository).

::

    OUT/
      README.md                  dataset card (YAML: license, configs, features) + datasheet
      croissant.json             Croissant 1.0 JSON-LD with RAI fields
      report.json                counts per outcome and reason, config, pass rates
      inputs.jsonl               one line per input: input, outcome, reason, clips
      data/{split}-{n:05d}.tar   WebDataset shards
      metadata/{split}.parquet   one row per clip: shard, key, every metadata field

and the two file helpers every writer and checker of a release shares: `write_atomic` and `sha256_of`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import IO

from acav1m_hf.schema import SPLITS

DATA_DIR = "data"
METADATA_DIR = "metadata"
CARD = "README.md"
CROISSANT = "croissant.json"
REPORT = "report.json"
INPUTS = "inputs.jsonl"
SHARD_PATTERN = re.compile(r"^(?P<split>[a-z]+)-(?P<n>\d{5})\.tar$")


def shard_name(split: str, n: int) -> str:
    """Relative path of a split's ``n``-th shard: the card's ``data_files`` glob and Croissant rely on this name."""
    return f"{DATA_DIR}/{split}-{n:05d}.tar"


def index_name(split: str) -> str:
    """Relative path of a split's Parquet index (one row per clip, so filtering never opens a tar)."""
    return f"{METADATA_DIR}/{split}.parquet"


def shard_split(name: str) -> str | None:
    """The split of a shard named ``data/{split}-{n:05d}.tar`` (`shard_name`), or None for any other file."""
    directory, _, base = name.rpartition("/")
    match = SHARD_PATTERN.match(base)
    return match["split"] if directory == DATA_DIR and match and match["split"] in SPLITS else None


def list_shards(root: str | Path) -> dict[str, list[Path]]:
    """Shards per split, sorted, for the splits that have any."""
    found: dict[str, list[Path]] = {}
    for path in sorted((Path(root) / DATA_DIR).glob("*.tar")):
        split = shard_split(f"{DATA_DIR}/{path.name}")
        if split is not None:
            found.setdefault(split, []).append(path)
    return {s: found[s] for s in SPLITS if s in found}


def sha256_of(f: IO[bytes]) -> str:
    """Hex sha256 of an open binary file from where it stands to its end, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a local file."""
    with open(path, "rb") as f:
        return sha256_of(f)


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` so that a reader sees the old file or the whole new one, never a part.

    The text goes to ``.{name}.partial`` beside it first (the temporary name curation's writer uses too), which is
    renamed over ``path`` once written; on any error the temporary is removed and ``path`` is untouched.
    """
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path

"""The layout of a release folder (a complete Hub dataset repository).

::

    OUT/
      README.md                  dataset card (YAML: license, configs, features) + datasheet
      croissant.json             Croissant 1.0 JSON-LD with RAI fields
      report.json                counts per outcome and reason, config, pass rates
      inputs.jsonl               one line per input: input, outcome, reason, clips
      data/{split}-{n:05d}.tar   WebDataset shards
      metadata/{split}.parquet   one row per clip: shard, key, every metadata field
"""

from __future__ import annotations

import re
from pathlib import Path

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


def list_shards(root: str | Path) -> dict[str, list[Path]]:
    """Shards per split, sorted, for the splits that have any."""
    found: dict[str, list[Path]] = {}
    for path in sorted((Path(root) / DATA_DIR).glob("*.tar")):
        match = SHARD_PATTERN.match(path.name)
        if match and match["split"] in SPLITS:
            found.setdefault(match["split"], []).append(path)
    return {s: found[s] for s in SPLITS if s in found}


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

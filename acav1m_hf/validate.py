"""``acav1m validate``: check a release folder against its own claims.

* every file listed in ``croissant.json`` matches its sha256 (a flipped byte
  names the shard);
* every sample of every shard conforms to the schema (`validate_sample`),
  keys are unique and each sample sits in its split's shards;
* the Parquet index lists exactly the samples of the shards, with the same
  metadata;
* the card's YAML declares the schema's features and every split's shards.
"""

from __future__ import annotations

import json
import math
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acav1m_hf import release
from acav1m_hf.schema import flatten, hf_features, validate_sample


def iter_samples(shard: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Samples of a tar shard as ``(key, {extension: bytes})``, grouped like WebDataset (split at the first dot).

    Two adjacent samples with one key come out as two samples, so that duplicate keys are seen, not merged.
    """
    key, members = None, {}
    with tarfile.open(shard, "r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            name = info.name.rsplit("/", 1)[-1]
            if name.startswith(".") or name.startswith("__"):
                continue
            stem, _, extension = name.partition(".")
            if stem != key or extension in members:  # a repeated member starts another sample with the same key
                if key is not None:
                    yield key, members
                key, members = stem, {}
            handle = tar.extractfile(info)
            members[extension] = handle.read() if handle else b""
    if key is not None:
        yield key, members


def validate_release(root: str | Path) -> list[str]:
    """Every problem found in the release at ``root``; an empty list means it is valid."""
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
    for split, paths in shards.items():
        for shard in paths:
            relative = shard.relative_to(root).as_posix()
            try:
                for key, members in iter_samples(shard):
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
            except (tarfile.TarError, OSError, EOFError) as exc:
                errors.append(f"{relative}: unreadable tar ({exc})")
    errors += _check_index(root, shards, samples)
    errors += _check_card(root, shards)
    return errors


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

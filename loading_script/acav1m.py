"""ACAV-1M: a `datasets` builder script over the release's WebDataset shards.

This file is self-contained on purpose: a dataset script runs inside
``datasets`` (from the Hub or a local path) where the ``acav1m`` package is not
installed, so the features are written out here. ``tests/test_loading_script.py``
asserts that they equal ``acav1m_hf.schema.hf_features()``, so they cannot
drift from the schema.

Who needs it: ``datasets`` 4 and later refuse scripts in ``load_dataset`` and
read a release through its card (``configs`` + ``dataset_info.features``) with
the packaged ``webdataset`` builder instead. This script serves ``datasets``
3.x users (``load_dataset("path/to/acav1m.py", data_dir=RELEASE,
trust_remote_code=True)``) and anyone who instantiates the builder class
directly. Do not upload it to the root of a Hub repository named ``acav1m``
(as ``acav1m.py``): ``datasets`` >= 4 then refuses the whole repository.

Splits are discovered from the data files, ``data/{split}-{n:05d}.tar``
(under ``data_dir``, or next to the script), unless ``data_files`` is given.
Shards are read with ``dl_manager.iter_archive``, so ``streaming=True`` reads
them sequentially without extracting. Only the members the schema declares
are decoded (never a pickle); anything else in a shard is ignored.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
from collections.abc import Iterator
from typing import Any

import datasets

_DESCRIPTION = (
    "ACAV-1M: audio-visual clips (mp4 with audio, 16 kHz flac, keyframe, optional segmentation mask and "
    "embeddings) with captions and audio-visual alignment metadata, stored as WebDataset shards."
)
_HOMEPAGE = "https://huggingface.co/datasets/acav1m/acav1m"
_LICENSE = "cc-by-4.0"
_CITATION = ""

_SHARD = re.compile(r"^(?P<split>[a-z]+)-(?P<n>\d{5})\.tar$")
"""Same as ``acav1m_hf.release.SHARD_PATTERN``."""
_MEMBER = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
"""webdataset's ``base_plus_ext``: the key is the basename up to its first dot, the member the rest."""

_List = getattr(datasets, "List", None) or datasets.Sequence  # `List` is datasets >= 4; 3.x spells it Sequence
_Video = getattr(datasets, "Video", None)


def _s() -> datasets.Value:
    return datasets.Value("string")


def _f() -> datasets.Value:
    return datasets.Value("float32")


def _i() -> datasets.Value:
    return datasets.Value("int64")


def _b() -> datasets.Value:
    return datasets.Value("bool")


def _filter(*extra: tuple[str, Any]) -> dict[str, Any]:
    return {"score": _f(), "raw": _f(), **dict(extra), "threshold": _f(), "passed": _b(), "reason": _s()}


_METADATA = {
    "key": _s(),
    "split": _s(),
    "source": {
        "video_id": _s(),
        "path": _s(),
        "start": _f(),
        "end": _f(),
        "license": _s(),
        "text": _s(),
        "title": _s(),
        "uploader": _s(),
        "upload_date": _s(),
    },
    "clip": {"duration": _f(), "fps": _f(), "width": _i(), "height": _i(), "sample_rate": _i()},
    "caption": {"text": _s(), "origin": _s(), "descriptions": _List(_s()), "transcript": _s(), "reason": _s()},
    "alignment": {
        "language": _filter(),
        "instance": _filter(),
        "temporal": _filter(("windows", _List(_f()))),
        "sync": {"offset": _f(), "confidence": _f(), "realigned": _b(), "reason": _s()},
        "flags": _List(_s()),
        "passed": _b(),
    },
    "labels": {
        "category": {"label": _s(), "id": _i(), "score": _f(), "reason": _s()},
        "localization": {"peak": _List(_f()), "box": _List(_f()), "reason": _s()},
        "mask": {"present": _b(), "reason": _s()},
    },
    "embeddings": {"present": _b(), "rows": _List(_s()), "model": _s(), "reason": _s()},
    "pipeline": {
        "version": _s(),
        "profile": _s(),
        "schema": _s(),
        "models": {"captioner": _s(), "condenser": _s(), "transcriber": _s(), "embedder": _s(), "aligner": _s()},
    },
}

FEATURES = datasets.Features(
    {
        "__key__": _s(),
        # datasets < 3.1 has no Video feature: the clip is then kept as its path and bytes
        "mp4": _Video() if _Video is not None else {"path": _s(), "bytes": datasets.Value("binary")},
        "flac": datasets.Audio(sampling_rate=16_000),
        "json": _METADATA,
        "jpg": datasets.Image(),
        "txt": _s(),
        "mask.png": datasets.Image(),
        "npy": _List(_List(_f())),
        "__url__": _s(),
    }
)
_MEDIA = ("mp4", "flac", "jpg", "mask.png")


def _decode(key: str, member: str, data: bytes) -> Any:
    """One member's value as ``datasets`` encodes it (media stay bytes, decoded lazily by the features)."""
    if member in _MEDIA:
        return {"path": f"{key}.{member}", "bytes": data}
    if member == "json":
        return json.loads(data)
    if member == "txt":
        return data.decode("utf-8")
    if member == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False).tolist()
    raise AssertionError(member)


class Acav1m(datasets.GeneratorBasedBuilder):
    """ACAV-1M shards as a ``datasets`` builder; one split per ``{split}-*.tar`` prefix found."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [
        datasets.BuilderConfig(name="default", version=VERSION, description="All members of every clip.")
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION, features=FEATURES, homepage=_HOMEPAGE, license=_LICENSE, citation=_CITATION
        )

    def _shards(self, dl_manager: Any) -> dict[str, list[str]]:
        """Shard files per split: ``data_files`` when given, else ``data/*.tar`` under ``data_dir`` (or the script's folder)."""
        if self.config.data_files:
            return {str(split): sorted(files) for split, files in self.config.data_files.items()}
        base = self.config.data_dir or self.base_path or "."
        if self.base_path and self.config.data_dir and not os.path.isabs(self.config.data_dir) and "://" not in base:
            base = posixpath.join(self.base_path, self.config.data_dir)
        from datasets.data_files import resolve_pattern

        found: list[str] = []
        for pattern in ("data/*.tar", "*.tar"):
            try:
                found = resolve_pattern(pattern, base_path=base, download_config=dl_manager.download_config)
            except FileNotFoundError:
                continue
            if found:
                break
        shards: dict[str, list[str]] = {}
        for path in sorted(found):
            match = _SHARD.match(posixpath.basename(path))
            if match:
                shards.setdefault(match["split"], []).append(path)
        if not shards:
            raise FileNotFoundError(
                f"no shards named {{split}}-NNNNN.tar under {base}/data; pass data_dir=RELEASE_FOLDER"
            )
        return shards

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        generators = []
        for split, files in self._shards(dl_manager).items():
            archives = dl_manager.download(files)
            generators.append(
                datasets.SplitGenerator(
                    name=split,
                    # two lists of equal length: datasets shards the split by them (num_shards = number of tars)
                    gen_kwargs={"archives": [dl_manager.iter_archive(a) for a in archives], "urls": list(archives)},
                )
            )
        return generators

    def _generate_examples(self, archives: list[Any], urls: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        for archive, url in ((archives[i], urls[i]) for i in range(len(archives))):  # no zip(strict=): py3.9
            sample: dict[str, Any] | None = None
            for path, file in archive:
                match = _MEMBER.match(path)
                if match is None:
                    continue
                key, member = match[1], match[2].lower()
                if member not in FEATURES or member.startswith("__"):
                    continue  # not a member of the schema (e.g. a .pyd pickle): never read, never decoded
                if sample is not None and sample["__key__"] != key:
                    yield sample["__key__"], sample
                    sample = None
                if sample is None:
                    sample = {name: None for name in FEATURES}
                    sample["__key__"], sample["__url__"] = key, url
                if sample[member] is not None:
                    raise ValueError(f"{url}: duplicate member {path}")
                sample[member] = _decode(key, member, file.read())
            if sample is not None:
                yield sample["__key__"], sample

"""Croissant JSON-LD of a release folder (``croissant.json``).

The Croissant is built from the folder alone (shards, Parquet index, and the
optional ``report.json``), with every field derived from `acav1m_hf.schema` and
every Responsible-AI property from `acav1m_hf.datasheet`, so that curation,
``acav1m croissant OUT`` and the bundled ``croissant/croissant.json`` agree byte
for byte on the same folder.

Layout of the JSON-LD (Croissant 1.0, read by mlcroissant 1.1):

* ``distribution``: one ``FileObject`` per tar shard and per Parquet index,
  each with its sha256 (mlcroissant checks it on load); one local ``FileSet``
  over ``metadata/*.parquet`` that the ``clips`` record set reads (mlcroissant
  has no union of FileObjects); one ``FileSet`` per tar member type,
  ``containedIn`` every shard.
* ``recordSet``: ``clips``, one record per clip and one field per index column;
  then one record set per member type (``mp4``, ``flac``, ...) whose ``key``
  comes from the member's file name (everything before the first dot, the
  WebDataset rule) and ``references`` ``clips/key``.

mlcroissant extracts each shard whole into ``$CROISSANT_CACHE/extract/<sha256
of the contentUrl>`` and never refreshes it. The contentUrl is relative
(``data/train-00000.tar``), so two releases share that directory: point
``CROISSANT_CACHE`` at a fresh directory per release before loading media
records. mlcroissant 1.1.1 also yields nothing on a second pass over a media
record set of the same ``mlc.Dataset``: open a new one per pass.

mlcroissant 1.1.1 extracts with a bare ``tarfile.extractall``: a hostile shard
(a member ``../../x``, a link) writes outside that cache. `safe_records` checks
every shard first, as ``acav1m validate`` does, and reads the records inside
`safe_extraction`, which makes every tar extraction use ``tarfile.data_filter``.
"""

from __future__ import annotations

import contextlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acav1m_hf import datasheet, strict_json
from acav1m_hf.release import CROISSANT, METADATA_DIR, REPORT, file_sha256, index_name, list_shards, write_atomic
from acav1m_hf.schema import MAX_MEMBER_BYTES, MEMBERS, SCHEMA_VERSION, SPLITS, Field, Member, index_columns

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The standard Croissant 1.0 ``@context`` (as mlcroissant writes it), fixed here so the output does not
depend on the installed mlcroissant."""

DATA_TYPES = {"string": "sc:Text", "int64": "cr:Int64", "float32": "cr:Float32", "bool": "sc:Boolean"}
"""Croissant dataType of each scalar kind of the schema."""

MEDIA: dict[str, tuple[str, str]] = {
    "video": ("video/mp4", "sc:VideoObject"),
    "audio": ("audio/flac", "sc:AudioObject"),
    "image": ("image/jpeg", "sc:ImageObject"),
    "json": ("application/json", "sc:Text"),
    "text": ("text/plain", "sc:Text"),
    "array": ("application/x-npy", "sc:Text"),
}
"""Encoding format and Croissant dataType of each media kind of a tar member.

mlcroissant yields raw bytes for audio, video and text contents and PIL images
for ``sc:ImageObject``; it has no binary type, so ``npy`` contents are ``sc:Text``
(the raw bytes of the ``.npy`` file)."""

_ENCODING_BY_EXTENSION = {"mask.png": "image/png"}

KEY_REGEX = r"^([^.]+)"
"""The sample key of a member file name: everything before the first dot (the WebDataset rule).

It also matches an already extracted key, which matters because mlcroissant's
join applies the transform to the file name column in place before the field
reads it again."""

SINGLE_VALUED_RAI = frozenset(
    {
        "dataCollection",
        "dataCollectionMissingData",
        "dataCollectionRawData",
        "dataImputationProtocol",
        "dataManipulationProtocol",
        "annotationsPerItem",
        "dataSocialImpact",
        "dataReleaseMaintenancePlan",
    }
)
"""RAI properties of cardinality one (mlcroissant warns on a list); their statements are joined into one text."""

CLIPS = "clips"
INDEX_FILESET = "metadata-index"


def record_set_id(member: Member) -> str:
    """Record set (and FileSet prefix) of a member type: ``mask.png`` becomes ``mask_png``."""
    return member.extension.replace(".", "_")


def _file_object(root: Path, rel: str, file_id: str, description: str, encoding: str) -> dict[str, Any]:
    path = root / rel
    return {
        "@type": "cr:FileObject",
        "@id": file_id,
        "name": file_id,
        "description": description,
        "contentUrl": rel,
        "contentSize": f"{path.stat().st_size} B",
        "encodingFormat": encoding,
        "sha256": file_sha256(path),
    }


def _field(record_set: str, name: str, field: Field, source: dict[str, Any]) -> dict[str, Any]:
    kind = field.item if field.kind == "list" else field.kind
    out: dict[str, Any] = {
        "@type": "cr:Field",
        "@id": f"{record_set}/{name}",
        "name": name,
        "description": field.description,
        "dataType": DATA_TYPES[kind or "string"],
        "source": source,
    }
    if field.kind == "list":
        out["repeated"] = True
    return out


def _clips_record_set() -> dict[str, Any]:
    def column(name: str) -> dict[str, Any]:
        return {"fileSet": {"@id": INDEX_FILESET}, "extract": {"column": name}}

    key = Field("key", "string", "Sample key: the tar member prefix, unique in the release, without dots.")
    fields = [_field(CLIPS, "key", key, column("key"))]
    fields += [_field(CLIPS, name, f, column(name)) for name, f in index_columns()]
    return {
        "@type": "cr:RecordSet",
        "@id": CLIPS,
        "name": CLIPS,
        "description": "One record per clip, from the Parquet index (metadata/{split}.parquet): the shard that "
        "holds the clip and every metadata field of its `json` member, flattened to dotted column names. "
        "Null values stand for what curation could not compute; the `reason` field beside them says why.",
        "key": {"@id": f"{CLIPS}/key"},
        "field": fields,
    }


def _media_record_set(member: Member) -> dict[str, Any]:
    rs = record_set_id(member)
    fileset = {"fileSet": {"@id": f"{rs}-files"}}
    data_type = MEDIA[member.media or "text"][1]
    return {
        "@type": "cr:RecordSet",
        "@id": rs,
        "name": rs,
        "description": f"The `{member.extension}` member of each sample: {member.description} "
        f"Joined to `clips` by key.",
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"{rs}/key",
                "name": "key",
                "description": "Sample key, from the member's file name.",
                "dataType": "sc:Text",
                "references": {"field": {"@id": f"{CLIPS}/key"}},
                "source": {**fileset, "extract": {"fileProperty": "filename"}, "transform": {"regex": KEY_REGEX}},
            },
            {
                "@type": "cr:Field",
                "@id": f"{rs}/content",
                "name": "content",
                "description": f"Content of the `{member.extension}` member.",
                "dataType": data_type,
                "source": {**fileset, "extract": {"fileProperty": "content"}},
            },
        ],
    }


def _report(root: Path) -> dict[str, Any]:
    path = root / REPORT
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def _release_version(root: Path) -> str:
    """The acav1m version that wrote the release (``pipeline.version`` in the index), else the schema version."""
    import pyarrow.parquet as pq

    versions: set[str] = set()
    for split in SPLITS:
        path = root / index_name(split)
        if path.exists():
            column = pq.read_table(path, columns=["pipeline.version"]).column(0)
            versions.update(v for v in column.to_pylist() if v)
    return max(versions) if len(versions) == 1 else SCHEMA_VERSION


def build_croissant(root: Path) -> dict[str, Any]:
    """The Croissant JSON-LD of the release at ``root``, as a dict.

    Deterministic: no clock and no absolute path goes in, so a byte-identical
    folder gives a byte-identical ``croissant.json``. ``datePublished`` is the
    report's ``date_published`` when it has one, else the dataset's 2024
    release year from the datasheet.
    """
    root = Path(root)
    shards = list_shards(root)
    if not shards:
        raise FileNotFoundError(f"{root}: no shards under data/")
    report = _report(root)

    distribution: list[dict[str, Any]] = []
    shard_ids: list[str] = []
    for split, paths in shards.items():
        for path in paths:
            rel = path.relative_to(root).as_posix()
            shard_ids.append(path.name)
            distribution.append(
                _file_object(root, rel, path.name, f"WebDataset shard of the {split} split.", "application/x-tar")
            )
    splits_with_index = [s for s in SPLITS if (root / index_name(s)).exists()]
    for split in splits_with_index:
        distribution.append(
            _file_object(
                root,
                index_name(split),
                f"index-{split}",
                f"Parquet index of the {split} split: one row per clip (shard, key, every metadata field).",
                "application/x-parquet",
            )
        )
    distribution.append(
        {
            "@type": "cr:FileSet",
            "@id": INDEX_FILESET,
            "name": INDEX_FILESET,
            "description": "The Parquet indexes of all splits (the index-* file objects), read together.",
            "encodingFormat": "application/x-parquet",
            "includes": f"{METADATA_DIR}/*.parquet",
        }
    )
    for member in MEMBERS:
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": f"{record_set_id(member)}-files",
                "name": f"{record_set_id(member)}-files",
                "description": f"`{member.extension}` members of the shards: {member.description}",
                "containedIn": [{"@id": i} for i in shard_ids],
                "encodingFormat": _ENCODING_BY_EXTENSION.get(member.extension, MEDIA[member.media or "text"][0]),
                "includes": f"*.{member.extension}",
            }
        )

    rai = {
        f"rai:{prop}": " ".join(texts) if prop in SINGLE_VALUED_RAI or len(texts) == 1 else texts
        for prop, texts in datasheet.rai_values().items()
    }
    date = report.get("date_published")
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": datasheet.NAME,
        "conformsTo": CONFORMS_TO,
        "description": datasheet.DESCRIPTION
        + " This release was curated by the acav1m reference software into WebDataset shards "
        "(data/{split}-{n}.tar) with a Parquet index per split (metadata/{split}.parquet).",
        "license": datasheet.LICENSE_URL,
        "url": datasheet.WEBSITE,
        "citeAs": datasheet.CITATION,
        "version": _release_version(root),
        "datePublished": date if isinstance(date, str) and date else datasheet.DATE_PUBLISHED,
        "keywords": ["audio-visual", "video", "audio", "captions", "webdataset", "ACAV-1M"],
        **rai,
        "distribution": distribution,
        "recordSet": [_clips_record_set(), *(_media_record_set(m) for m in MEMBERS)],
    }


def dumps(croissant: dict[str, Any]) -> str:
    """The exact text written to ``croissant.json`` (stable key order, UTF-8, final newline)."""
    return strict_json.dumps(croissant, indent=2, ensure_ascii=False) + "\n"


def write_croissant(root: Path) -> Path:
    """Write ``root/croissant.json`` (atomically) and return its path."""
    root = Path(root)
    path = root / CROISSANT
    return write_atomic(path, dumps(build_croissant(root)))


# --------------------------------------------------------------------------- reading with mlcroissant, safely


@contextlib.contextmanager
def safe_extraction() -> Iterator[None]:
    """Within the block, every ``tarfile`` extraction without an explicit filter uses ``tarfile.data_filter``.

    mlcroissant 1.1.1 calls ``tar.extractall(target)`` with no filter, which on Python 3.11 and 3.12 trusts every
    member: ``../../x``, an absolute path or a link writes wherever it points. Since Python 3.11.4 such a call
    takes its filter from ``TarFile.extraction_filter``; ``data_filter`` refuses (``tarfile.FilterError``) any
    member that would land outside the target, links that point outside it, device files and FIFOs, and drops
    set-uid bits. The setting is process-wide while the block runs (other threads get the stricter filter too).
    """
    previous = tarfile.TarFile.__dict__["extraction_filter"]  # the raw attribute: a staticmethod if someone set one
    tarfile.TarFile.extraction_filter = staticmethod(tarfile.data_filter)
    try:
        yield
    finally:
        tarfile.TarFile.extraction_filter = previous


_EXTRACTED = {"application/x-tar", "application/zip"}
"""File objects that mlcroissant extracts; it opens either kind as a tar when the bytes are one."""


def safe_records(
    root: str | Path, record_set: str, *, max_member_bytes: int = MAX_MEMBER_BYTES
) -> Iterator[dict[str, Any]]:
    """The records of ``record_set`` of the local release at ``root``, read with mlcroissant, never outside its cache.

    Before mlcroissant opens anything, every archive that ``croissant.json`` lists is checked like ``acav1m validate``
    checks a shard (`acav1m_hf.validate.check_shard`: plain tar, only regular members named ``{key}.{extension}``,
    none over ``max_member_bytes``); a shard that fails raises `ValueError` naming it and the member. A tar with a
    remote ``contentUrl`` cannot be checked first and is refused: download the release (``acav1m download``).
    The records are then read inside `safe_extraction`, which stays in force until the generator is exhausted or
    closed. See the module docstring about ``CROISSANT_CACHE``.
    """
    import mlcroissant as mlc

    from acav1m_hf.validate import check_shard

    root = Path(root)
    croissant = json.loads((root / CROISSANT).read_text(encoding="utf-8"))
    for entry in croissant.get("distribution", []):
        url, formats = entry.get("contentUrl"), entry.get("encodingFormat")
        if not url or not set([formats] if isinstance(formats, str) else formats or []) & _EXTRACTED:
            continue
        if "://" in url:
            raise ValueError(f"{root / CROISSANT}: shard {url} is remote and cannot be checked before loading")
        try:
            check_shard(root / url, max_member_bytes)
        except (ValueError, tarfile.TarError, OSError, EOFError) as exc:
            raise ValueError(f"{url}: refused, {exc}") from exc
    with safe_extraction():
        yield from mlc.Dataset(jsonld=str(root / CROISSANT)).records(record_set)

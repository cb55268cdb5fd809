"""Croissant JSON-LD of a release folder (``croissant.json``).

The Croissant is rendered from `acav1m_hf.facts.ReleaseFacts` alone (`render`:
the shards' and indexes' paths, sizes and sha256, the version in the index, the
report's publication date), with every field derived from `acav1m_hf.schema` and
every Responsible-AI property from `acav1m_hf.datasheet`, so that curation (from
what it holds), ``acav1m croissant OUT`` and the bundled
``croissant/croissant.json`` (from a folder) agree byte for byte on the same
release.

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
from acav1m_hf.facts import FileFacts, ReleaseFacts
from acav1m_hf.release import CROISSANT, METADATA_DIR, write_atomic
from acav1m_hf.schema import MAX_MEMBER_BYTES, MEMBERS, Field, Member, index_columns

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


def _file_object(file: FileFacts, file_id: str, description: str, encoding: str) -> dict[str, Any]:
    if file.sha256 is None:
        raise ValueError(f"{file.path}: no sha256 (read the release with checksums=True)")
    return {
        "@type": "cr:FileObject",
        "@id": file_id,
        "name": file_id,
        "description": description,
        "contentUrl": file.path,
        "contentSize": f"{file.bytes} B",
        "encodingFormat": encoding,
        "sha256": file.sha256,
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


def render(facts: ReleaseFacts) -> dict[str, Any]:
    """The Croissant JSON-LD of the release that ``facts`` describe (read with checksums), as a dict.

    Deterministic: no clock and no absolute path goes in, so the same release
    gives a byte-identical ``croissant.json``. ``version`` is the release's version
    (``report.json``'s ``release_version``, 1.0.0 as curation first writes it),
    ``dateModified`` the date of its last change when it has one;
    ``datePublished`` is the report's ``date_published`` when it has one, else
    the dataset's 2024 release year from the datasheet.
    """
    if not facts.shards:
        raise ValueError("a release without shards has no Croissant")
    distribution: list[dict[str, Any]] = []
    for split in facts.splits.values():
        for shard in split.shards:
            description = f"WebDataset shard of the {split.name} split."
            distribution.append(_file_object(shard, shard.name, description, "application/x-tar"))
    shard_ids = [shard.name for shard in facts.shards]
    for split in facts.splits.values():
        if split.index is not None:
            distribution.append(
                _file_object(
                    split.index.file,
                    f"index-{split.name}",
                    f"Parquet index of the {split.name} split: one row per clip (shard, key, every metadata field).",
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
        "version": facts.curation.release_version,
        "datePublished": facts.curation.date_published or datasheet.DATE_PUBLISHED,
        **({"dateModified": facts.curation.date_modified} if facts.curation.date_modified else {}),
        "keywords": ["audio-visual", "video", "audio", "captions", "webdataset", "ACAV-1M"],
        **rai,
        "distribution": distribution,
        "recordSet": [_clips_record_set(), *(_media_record_set(m) for m in MEMBERS)],
    }


def dumps(croissant: dict[str, Any]) -> str:
    """The exact text written to ``croissant.json`` (stable key order, UTF-8, final newline)."""
    return strict_json.dumps(croissant, indent=2, ensure_ascii=False) + "\n"


def write_croissant(root: str | Path) -> Path:
    """Write ``root/croissant.json`` (atomically) for the release folder ``root`` and return its path."""
    root = Path(root)
    facts = ReleaseFacts.read(root)
    if not facts.shards:
        raise FileNotFoundError(f"{root}: no shards under data/")
    path = root / CROISSANT
    return write_atomic(path, dumps(render(facts)))


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

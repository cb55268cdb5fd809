"""The one schema of an ACAV-1M sample.

Everything else derives from the declarations in this module:

* the tar members of a WebDataset sample (`MEMBERS`) and what a shard's members may be (`check_member`,
  `split_member_name`, `MAX_MEMBER_BYTES`, uncompressed: `compression`),
* the metadata fields of its ``json`` member (`METADATA`),
* the Hugging Face ``Features`` written into the dataset card (`hf_features`),
* the flat columns of the Parquet index and of the Croissant record set
  (`index_columns`),
* the validation of every sample that curation writes and that
  ``acav1m validate`` reads back (`validate_metadata`, `validate_sample`).

A value that a stage could not compute is ``null``; the struct it sits in then
carries a non-null ``reason`` (see `Field.reason_for`). Nothing is made up.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = "1.0"
AUDIO_SAMPLE_RATE = 16_000
SPLITS = ("train", "validation", "test")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,120}$")
"""Keys never contain a dot: WebDataset readers split key and member at the first dot."""
SCALAR_KINDS = ("string", "int64", "float32", "bool")


@dataclass(frozen=True)
class Field:
    """One metadata field.

    ``kind`` is a scalar kind, ``"list"`` (of ``item`` scalars) or ``"struct"``
    (of ``children``). ``required`` fields are never null. A struct with
    ``reason_for`` set has a ``reason`` child that must be non-null exactly
    when the field it names is null.
    """

    name: str
    kind: str
    description: str
    children: tuple[Field, ...] = ()
    item: str | None = None
    required: bool = False
    reason_for: str | None = None
    unit_interval: bool = False
    """Scalar (or every list item) lies in [0, 1]."""
    choices: tuple[str, ...] = ()


def _s(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "string", description, **kw)


def _f(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "float32", description, **kw)


def _i(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "int64", description, **kw)


def _b(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "bool", description, **kw)


def _l(name: str, item: str, description: str, **kw: Any) -> Field:
    return Field(name, "list", description, item=item, **kw)


def _struct(name: str, description: str, *children: Field, **kw: Any) -> Field:
    return Field(name, "struct", description, children=tuple(children), **kw)


_REASON = _s("reason", "Why the value is null (a stage could not compute it); null when the value is present.")


def _filter(name: str, what: str, *extra: Field) -> Field:
    return _struct(
        name,
        f"{what} (Algorithm 1). `score` is compared with `threshold`.",
        _f("score", "Normalised score in [0, 1] compared with the threshold.", unit_interval=True),
        _f("raw", "The raw similarity the score was normalised from (cosine in [-1, 1] for model profiles)."),
        *extra,
        _f("threshold", "Threshold used for the pass/flag decision.", required=True),
        _b("passed", "score >= threshold; null when the score is null."),
        _REASON,
        reason_for="score",
    )


METADATA = _struct(
    "json",
    "Per-clip metadata, the `json` member of every sample.",
    _s("key", "Sample key: the tar member prefix, unique in the release, without dots.", required=True),
    _s("split", "Split the clip belongs to, from a hash of its source video id.", required=True, choices=SPLITS),
    _struct(
        "source",
        "Where the clip was cut from.",
        _s("video_id", "Identifier of the source video (all its clips share one split).", required=True),
        _s("path", "Path or URL of the source file as given to curation.", required=True),
        _f("start", "Start of the clip in the source, seconds.", required=True),
        _f("end", "End of the clip in the source, seconds.", required=True),
        _s("license", "License of the source video, when known."),
        _s("text", "Free text that came with the input (manifest `text`), when given."),
    ),
    _struct(
        "clip",
        "The media written in this sample.",
        _f("duration", "Clip duration, seconds.", required=True),
        _f("fps", "Frame rate of the `mp4` member.", required=True),
        _i("width", "Frame width of the `mp4` member, pixels.", required=True),
        _i("height", "Frame height of the `mp4` member, pixels.", required=True),
        _i("sample_rate", "Sample rate of the `flac` member (16 kHz mono).", required=True),
    ),
    _struct(
        "caption",
        "The clip's comprehensive caption (Algorithm 1, lines 6-8).",
        _s("text", "The caption; also the `txt` member."),
        _s("origin", "Where the caption came from: manifest, or the model(s) that wrote it."),
        _l("descriptions", "string", "Sentence-level descriptions the caption was condensed from."),
        _s("transcript", "Speech transcript, when a transcriber ran."),
        _REASON,
        reason_for="text",
    ),
    _struct(
        "alignment",
        "The three alignment filters of Algorithm 1 and the synchronisation estimate.",
        _filter("language", "Language alignment: caption against the audio-visual content"),
        _filter("instance", "Instance alignment: audio against visual"),
        _filter(
            "temporal",
            "Temporal alignment: mean over 1-s windows",
            _l("windows", "float32", "Per-1-s-window alignment scores in [0, 1].", unit_interval=True),
        ),
        _struct(
            "sync",
            "Audio-visual synchronisation: the audio offset that best aligns audio with video.",
            _f("offset", "Estimated audio delay relative to the video, seconds (positive: audio late)."),
            _f("confidence", "Confidence of the offset estimate in [0, 1].", unit_interval=True),
            _b("realigned", "The audio was shifted by `offset` before the final decision.", required=True),
            _REASON,
            reason_for="offset",
        ),
        _l("flags", "string", "Filters the clip failed (flagged for review or reprocessing)."),
        _b("passed", "No filter failed.", required=True),
    ),
    _struct(
        "labels",
        "Task labels.",
        _struct(
            "category",
            "Classification: the clip's audio-visual class.",
            _s("label", "Class name."),
            _i("id", "Class index in the release's label vocabulary."),
            _f("score", "Classifier score in [0, 1].", unit_interval=True),
            _REASON,
            reason_for="label",
        ),
        _struct(
            "localization",
            "Sound-source localization, normalised image coordinates (x right, y down, in [0, 1]).",
            _l("peak", "float32", "[x, y] of the localization map's maximum.", unit_interval=True),
            _l("box", "float32", "[x0, y0, x1, y1] around the sounding region.", unit_interval=True),
            _REASON,
            reason_for="peak",
        ),
        _struct(
            "mask",
            "Segmentation: the `mask.png` member (same size as the video frames, 255 = sounding region).",
            _b("present", "The sample carries a `mask.png` member.", required=True),
            _REASON,
        ),
    ),
    _struct(
        "embeddings",
        "The `npy` member: one embedding per row, for retrieval.",
        _b("present", "The sample carries an `npy` member.", required=True),
        _l("rows", "string", "What each row of the `npy` array embeds (e.g. audio, visual, text)."),
        _s("model", "Model that produced the embeddings."),
        _REASON,
    ),
    _struct(
        "pipeline",
        "Provenance of this sample.",
        _s("version", "acav1m version that wrote the sample.", required=True),
        _s("profile", "Curation profile (models and settings).", required=True),
        _s("schema", "Schema version.", required=True),
        _struct(
            "models",
            "Model used for each role; null when the role did not run.",
            _s("captioner", "Video LLM that wrote the descriptions."),
            _s("condenser", "LLM that condensed descriptions into one caption."),
            _s("transcriber", "Speech recogniser."),
            _s("embedder", "Audio-visual-text embedder (alignment, labels)."),
            _s("aligner", "Method that computed the alignment scores."),
        ),
    ),
    required=True,
)


@dataclass(frozen=True)
class Member:
    """One tar member of a sample: ``{key}.{extension}``."""

    extension: str
    description: str
    required: bool
    media: str | None = None  # "video", "audio", "image", "array", "text", "json"


MEMBERS: tuple[Member, ...] = (
    Member("mp4", "The clip, H.264 video with AAC audio.", True, "video"),
    Member("flac", "The clip's audio, 16 kHz mono FLAC.", True, "audio"),
    Member("json", "Metadata, see `METADATA`.", True, "json"),
    Member("jpg", "Keyframe from the middle of the clip.", True, "image"),
    Member("txt", "The caption, UTF-8; present when `caption.text` is not null.", False, "text"),
    Member("mask.png", "Segmentation mask, 8-bit grayscale; present when `labels.mask.present`.", False, "image"),
    Member(
        "npy", "float32 embeddings, one row per `embeddings.rows`; present when `embeddings.present`.", False, "array"
    ),
)
MEMBER_EXTENSIONS = tuple(m.extension for m in MEMBERS)

MAX_MEMBER_BYTES = 256 * 1024 * 1024
"""Default cap on one tar member's size for readers that check shards (``validate``, ``stream``).

A curated member is a few MB (a 10-s clip at 384 px is about 1 MB); 256 MiB still fits a ten-minute 1080p clip.
The cap stops a hostile shard from making a reader allocate gigabytes; readers take a parameter to change it."""

COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
"""Leading bytes of compressed files. Shards are plain tars: a compressed ``.tar`` is refused, not silently
expanded (a small gzip file can expand to gigabytes)."""


def compression(head: bytes) -> str | None:
    """The compression a file starting with ``head`` uses (``"gzip"``, ...), or ``None`` for an uncompressed file."""
    return next((name for magic, name in COMPRESSION_MAGIC.items() if head.startswith(magic)), None)


def split_member_name(name: str) -> tuple[str, str]:
    """``(key, extension)`` of a shard member named ``{key}.{extension}``, split at the first dot (WebDataset's rule).

    Raises `ValueError` with the reason for any other name: a folder part, ``..`` or an absolute path (an extracting
    reader such as mlcroissant or ``tar -x`` would write outside its folder), no extension, or a key outside
    `KEY_PATTERN`. Whether the extension is one of `MEMBERS` is `validate_sample`'s business.
    """
    if name.startswith("/"):
        raise ValueError(f"member {name!r} is an absolute path")
    if ".." in name.split("/"):
        raise ValueError(f"member {name!r} has a '..' part")
    if "/" in name:
        raise ValueError(f"member {name!r} has a folder part")
    key, dot, extension = name.partition(".")
    if not dot or not extension:
        raise ValueError(f"member {name!r} has no extension")
    if not KEY_PATTERN.match(key):
        raise ValueError(f"member {name!r} has a key {key!r} that does not match {KEY_PATTERN.pattern}")
    return key, extension


_MEMBER_TYPES = {
    tarfile.DIRTYPE: "a directory",
    tarfile.SYMTYPE: "a symlink",
    tarfile.LNKTYPE: "a hardlink",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


def check_member(info: tarfile.TarInfo, max_bytes: int = MAX_MEMBER_BYTES) -> tuple[str, str]:
    """``(key, extension)`` of a tar member that is safe to read; `ValueError` with the reason otherwise.

    Only regular files belong in a shard: a directory, symlink, hardlink, device or FIFO member is refused (a link
    would let an extracting reader write or read through it), and so is a member over ``max_bytes``.
    """
    if not info.isreg() or info.issparse():
        kind = "a sparse file" if info.issparse() else _MEMBER_TYPES.get(info.type, f"of tar type {info.type!r}")
        raise ValueError(f"member {info.name!r} is {kind}, not a regular file")
    key, extension = split_member_name(info.name)
    if info.size > max_bytes:
        raise ValueError(f"member {info.name!r} is {info.size} bytes, over the limit of {max_bytes}")
    return key, extension


# --------------------------------------------------------------------------- derived: fields


def iter_leaves(field: Field = METADATA, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Field]]:
    """Every non-struct field with its path below the root (the root name excluded)."""
    for child in field.children:
        path = (*prefix, child.name)
        if child.kind == "struct":
            yield from iter_leaves(child, path)
        else:
            yield path, child


def column_name(path: tuple[str, ...]) -> str:
    """Flat column name of a metadata path in the Parquet index and Croissant: ``alignment.instance.score``."""
    return ".".join(path)


def index_columns() -> list[tuple[str, Field]]:
    """Columns of ``metadata/{split}.parquet``: shard, key and every metadata leaf."""
    return [
        ("shard", _s("shard", "Shard file, relative to the release root (data/...).", required=True)),
        *((column_name(p), f) for p, f in iter_leaves() if p != ("key",)),
    ]


def flatten(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata of one sample as a flat row, keyed by `column_name`."""
    row: dict[str, Any] = {}
    for path, _ in iter_leaves():
        value: Any = metadata
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        row[column_name(path)] = value
    return row


# --------------------------------------------------------------------------- derived: Hugging Face


def _hf_value(kind: str) -> Any:
    from datasets import Value

    return Value(kind)


def _hf_feature(field: Field) -> Any:
    from datasets import List

    if field.kind == "struct":
        return {c.name: _hf_feature(c) for c in field.children}
    if field.kind == "list":
        return List(_hf_value(field.item or "string"))
    return _hf_value(field.kind)


def hf_features() -> Any:
    """``datasets.Features`` of a sample as the packaged webdataset builder yields it."""
    from datasets import Audio, Features, Image, List, Value, Video

    media = {
        "mp4": Video(),
        "flac": Audio(sampling_rate=AUDIO_SAMPLE_RATE),
        "json": _hf_feature(METADATA),
        "jpg": Image(),
        "txt": Value("string"),
        "mask.png": Image(),
        "npy": List(List(Value("float32"))),
    }
    assert tuple(media) == MEMBER_EXTENSIONS
    return Features({"__key__": Value("string"), **media, "__url__": Value("string")})


def arrow_schema() -> Any:
    """``pyarrow.Schema`` of the Parquet index."""
    import pyarrow as pa

    scalar = {"string": pa.string(), "int64": pa.int64(), "float32": pa.float32(), "bool": pa.bool_()}
    fields = [pa.field("key", pa.string(), nullable=False)]
    for name, field in index_columns():
        kind = pa.list_(scalar[field.item or "string"]) if field.kind == "list" else scalar[field.kind]
        fields.append(pa.field(name, kind, nullable=not field.required))
    return pa.schema(fields)


# --------------------------------------------------------------------------- validation


def _check_scalar(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int64":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _validate(field: Field, value: Any, path: str, errors: list[str]) -> None:
    if value is None:
        if field.required:
            errors.append(f"{path}: required, got null")
        return
    if field.kind == "struct":
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        names = {c.name for c in field.children}
        errors.extend(f"{path}.{extra}: not in the schema" for extra in sorted(set(value) - names))
        for child in field.children:
            if child.name not in value:
                errors.append(f"{path}.{child.name}: missing")
            else:
                _validate(child, value[child.name], f"{path}.{child.name}", errors)
        if field.reason_for is not None:
            missing = value.get(field.reason_for) is None
            has_reason = value.get("reason") is not None
            if missing and not has_reason:
                errors.append(f"{path}.{field.reason_for}: null without a reason")
            if not missing and has_reason:
                errors.append(f"{path}.reason: set although {field.reason_for} is present")
        return
    items = value if field.kind == "list" else [value]
    kind = field.item if field.kind == "list" else field.kind
    if field.kind == "list" and not isinstance(value, list):
        errors.append(f"{path}: expected a list, got {type(value).__name__}")
        return
    for item in items:
        if not _check_scalar(kind or "string", item):
            errors.append(f"{path}: expected {kind}, got {item!r}")
        elif field.unit_interval and not 0.0 <= item <= 1.0:
            errors.append(f"{path}: {item!r} is outside [0, 1]")
        elif field.choices and item not in field.choices:
            errors.append(f"{path}: {item!r} is not one of {', '.join(field.choices)}")


def validate_metadata(metadata: Any) -> list[str]:
    """Every way ``metadata`` departs from `METADATA`; empty when it conforms."""
    errors: list[str] = []
    _validate(METADATA, metadata, "json", errors)
    if not errors:
        if not KEY_PATTERN.match(metadata["key"]):
            errors.append(f"json.key: {metadata['key']!r} must match {KEY_PATTERN.pattern}")
        loc = metadata["labels"]["localization"]
        if loc["peak"] is not None and len(loc["peak"]) != 2:
            errors.append("json.labels.localization.peak: expected [x, y]")
        if loc["box"] is not None and len(loc["box"]) != 4:
            errors.append("json.labels.localization.box: expected [x0, y0, x1, y1]")
    return errors


def validate_sample(key: str, members: Mapping[str, bytes]) -> list[str]:
    """Check one sample as read from a shard: its members, its metadata, and that they agree."""
    errors = [f"{key}.{ext}: required member missing" for ext in _required_members() if ext not in members]
    errors += [f"{key}.{ext}: not a member of the schema" for ext in sorted(set(members) - set(MEMBER_EXTENSIONS))]
    if "json" not in members:
        return errors
    try:
        metadata = json.loads(members["json"])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [*errors, f"{key}.json: not valid JSON ({exc})"]
    errors += [f"{key}: {e}" for e in validate_metadata(metadata)]
    if errors:
        return errors
    if metadata["key"] != key:
        errors.append(f"{key}.json: key field is {metadata['key']!r}")
    caption = metadata["caption"]["text"]
    if (caption is None) != ("txt" not in members):
        errors.append(
            f"{key}.txt: present={('txt' in members)} but caption.text is {'null' if caption is None else 'set'}"
        )
    elif caption is not None and members["txt"].decode("utf-8", "replace") != caption:
        errors.append(f"{key}.txt: differs from caption.text")
    for ext, flag in (("mask.png", metadata["labels"]["mask"]["present"]), ("npy", metadata["embeddings"]["present"])):
        if flag != (ext in members):
            errors.append(f"{key}.{ext}: member present={ext in members} but metadata says {flag}")
    return errors


def _required_members() -> list[str]:
    return [m.extension for m in MEMBERS if m.required]

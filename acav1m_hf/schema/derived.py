"""What derives from `METADATA` and `MEMBERS`: the flat columns of the Parquet index and of the Croissant record set,
the Hugging Face ``Features`` of the dataset card and the Arrow schema of the index."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from acav1m_hf.schema.fields import AUDIO_SAMPLE_RATE, METADATA, Field
from acav1m_hf.schema.members import MEMBER_EXTENSIONS


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
        ("shard", Field("shard", "string", "Shard file, relative to the release root (data/...).", required=True)),
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


# --------------------------------------------------------------------------- Hugging Face and Arrow


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

"""The one schema of an ACAV-1M sample.

Everything else derives from the declarations in this package:

* the metadata fields of its ``json`` member (`METADATA`, in `fields`),
* the tar members of a WebDataset sample (`MEMBERS`) and what a shard's members may be (`check_member`,
  `split_member_name`, `MAX_MEMBER_BYTES`, uncompressed: `compression`), in `members`,
* the Hugging Face ``Features`` written into the dataset card (`hf_features`) and the flat columns of the Parquet
  index and of the Croissant record set (`index_columns`), in `derived`,
* the validation of every sample that curation writes and that ``acav1m validate`` reads back (`validate_metadata`,
  `validate_sample`), in `validation`.

Import the names from here (``from acav1m_hf.schema import MEMBERS``); the modules are how the package is laid out.
"""

from __future__ import annotations

from acav1m_hf.schema.derived import arrow_schema, column_name, flatten, hf_features, index_columns, iter_leaves
from acav1m_hf.schema.fields import (
    AUDIO_SAMPLE_RATE,
    KEY_PATTERN,
    METADATA,
    SCALAR_KINDS,
    SCHEMA_VERSION,
    SPLITS,
    Field,
)
from acav1m_hf.schema.members import (
    COMPRESSION_MAGIC,
    MAX_MEMBER_BYTES,
    MEMBER_EXTENSIONS,
    MEMBERS,
    Member,
    check_member,
    compression,
    split_member_name,
)
from acav1m_hf.schema.validation import validate_metadata, validate_sample

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "COMPRESSION_MAGIC",
    "KEY_PATTERN",
    "MAX_MEMBER_BYTES",
    "MEMBERS",
    "MEMBER_EXTENSIONS",
    "METADATA",
    "SCALAR_KINDS",
    "SCHEMA_VERSION",
    "SPLITS",
    "Field",
    "Member",
    "arrow_schema",
    "check_member",
    "column_name",
    "compression",
    "flatten",
    "hf_features",
    "index_columns",
    "iter_leaves",
    "split_member_name",
    "validate_metadata",
    "validate_sample",
]

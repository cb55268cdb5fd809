"""The tar members of a sample (`MEMBERS`) and the rules for what a shard's members may be.

One rule for every reader and writer of shards: `split_member_name` splits a member's name into key and extension
(curation's deduplication, ``acav1m validate``, the site and `acav1m_hf.streaming` all call it, through
`check_member` where they read a tar), and `check_member` refuses links, devices and oversized members.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass

from acav1m_hf.schema.fields import KEY_PATTERN


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

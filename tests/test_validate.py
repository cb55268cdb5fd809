"""`acav1m validate` on hostile and damaged shards: refused, naming the shard and the member.

Every case damages a copy of the session release and then regenerates ``croissant.json`` (sha256 and sizes), as a
hostile mirror would, so that the checksum step passes and only the defect under test is left to find.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from acav1m_hf.cli import main
from acav1m_hf.croissant import write_croissant
from acav1m_hf.release import list_shards
from acav1m_hf.schema import MAX_MEMBER_BYTES
from acav1m_hf.validate import DECODERS, validate_release

GARBAGE = b"this is not a media file " * 200


def _first_shard(root: Path) -> tuple[Path, str]:
    shard = next(iter(list_shards(root).values()))[0]
    return shard, shard.relative_to(root).as_posix()


def _read(shard: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(shard) as tar:
        return [(info, tar.extractfile(info).read() if info.isreg() else b"") for info in tar]


def _write(shard: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(shard, "w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b"hostile" if kind == tarfile.REGTYPE else b""


def _only_index_errors(errors: list[str]) -> bool:
    """Samples after a refused member are never read, so the index lists them as in no shard: nothing else."""
    return all("is not in any shard" in e for e in errors)


def test_the_untouched_release_is_valid_with_and_without_media(release: Path) -> None:
    assert validate_release(release) == []
    assert validate_release(release, media=True, workers=2) == []


HOSTILE = {
    "dot-dot": (lambda key: _member(f"../../x/{key}.txt"), "has a '..' part"),
    "absolute": (lambda key: _member(f"/tmp/{key}.txt"), "is an absolute path"),
    "folder": (lambda key: _member(f"x/{key}.txt"), "has a folder part"),
    "no-extension": (lambda key: _member(key), "has no extension"),
    "bad-key": (lambda key: _member("bad key.txt"), "has a key 'bad key' that does not match"),
    "symlink": (lambda key: _member(f"{key}.lnk", tarfile.SYMTYPE, "/etc/passwd"), "is a symlink"),
    "hardlink": (lambda key: _member(f"{key}.lnk", tarfile.LNKTYPE, f"{key}.json"), "is a hardlink"),
    "directory": (lambda key: _member(f"{key}.d", tarfile.DIRTYPE), "is a directory"),
    "fifo": (lambda key: _member(f"{key}.fifo", tarfile.FIFOTYPE), "is a FIFO"),
    "device": (lambda key: _member(f"{key}.dev", tarfile.CHRTYPE), "is a character device"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_member_is_refused_naming_shard_and_member(release_copy: Path, case: str) -> None:
    make, reason = HOSTILE[case]
    shard, relative = _first_shard(release_copy)
    members = _read(shard)
    key = members[0][0].name.split(".", 1)[0]
    hostile = make(key)
    _write(shard, [*members[:3], hostile, *members[3:]])
    write_croissant(release_copy)

    errors = validate_release(release_copy)
    assert errors, case
    assert errors[0].startswith(f"{relative}: refused, member {hostile[0].name!r} ") and reason in errors[0]
    assert _only_index_errors(errors[1:])


def test_a_shard_of_only_links_is_refused(release_copy: Path) -> None:
    shard, relative = _first_shard(release_copy)
    key = _read(shard)[0][0].name.split(".", 1)[0]
    _write(
        shard,
        [_member(f"{key}.json", tarfile.SYMTYPE, "/etc/passwd"), _member(f"{key}.mp4", tarfile.LNKTYPE, "x.mp4")],
    )
    write_croissant(release_copy)
    errors = validate_release(release_copy)
    assert errors[0] == f"{relative}: refused, member '{key}.json' is a symlink, not a regular file"
    assert errors[1:] and _only_index_errors(errors[1:])


@pytest.mark.parametrize(
    ("compress", "kind"), [(gzip.compress, "gzip"), (bz2.compress, "bzip2"), (lzma.compress, "xz")]
)
def test_a_compressed_tar_is_refused_by_its_magic_bytes(
    release_copy: Path, compress: Callable[[bytes], bytes], kind: str
) -> None:
    shard, relative = _first_shard(release_copy)
    shard.write_bytes(compress(shard.read_bytes()))
    write_croissant(release_copy)
    errors = validate_release(release_copy)
    assert errors[0] == f"{relative}: refused, {kind}-compressed, not a plain tar (shards are never compressed)"
    assert _only_index_errors(errors[1:])


def test_a_member_over_the_size_limit_is_refused_before_it_is_read(release: Path) -> None:
    assert validate_release(release) == []
    sizes = [(relative, info) for relative, info in _all_members(release)]
    largest = max(info.size for _, info in sizes)
    assert largest < MAX_MEMBER_BYTES // 100  # the default leaves ample room for real clips
    assert validate_release(release, max_member_bytes=largest) == []
    relative, first = next((r, i) for r, i in sizes if i.size > largest - 1)
    errors = validate_release(release, max_member_bytes=largest - 1)
    assert (
        f"{relative}: refused, member {first.name!r} is {first.size} bytes, over the limit of {largest - 1}" in errors
    )


def _all_members(root: Path) -> list[tuple[str, tarfile.TarInfo]]:
    found = []
    for paths in list_shards(root).values():
        for shard in paths:
            with tarfile.open(shard) as tar:
                found += [(shard.relative_to(root).as_posix(), info) for info in tar]
    return found


@pytest.mark.parametrize("extension", sorted(DECODERS))
def test_undecodable_media_with_regenerated_checksums_fails_only_with_media(release_copy: Path, extension: str) -> None:
    shard, relative = _first_shard(release_copy)
    members = _read(shard)
    index = next(i for i, (info, _) in enumerate(members) if info.name.split(".", 1)[1] == extension)
    key = members[index][0].name.split(".", 1)[0]
    members[index] = (members[index][0], GARBAGE)
    _write(shard, members)
    write_croissant(release_copy)

    assert validate_release(release_copy) == []  # checksums, schema, index and card all agree
    errors = validate_release(release_copy, media=True, workers=2)
    assert len(errors) == 1 and errors[0].startswith(f"{relative}: {key}.{extension}: cannot decode ("), errors


def test_cli_validate_media_names_shard_and_key(release_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard, relative = _first_shard(release_copy)
    members = _read(shard)
    index = next(i for i, (info, _) in enumerate(members) if info.name.endswith(".mp4"))
    key = members[index][0].name.split(".", 1)[0]
    members[index] = (members[index][0], GARBAGE)
    _write(shard, members)
    write_croissant(release_copy)

    assert main(["validate", str(release_copy)]) == 0
    assert capsys.readouterr().out == f"{release_copy}: valid\n"
    assert main(["validate", "--media", str(release_copy)]) == 1
    err = capsys.readouterr().err
    assert f"error: {relative}: {key}.mp4: cannot decode (" in err and f"{release_copy}: 1 problem(s)" in err
    assert main(["validate", "--max-member-bytes", "100", str(release_copy)]) == 1
    assert f"error: {relative}: refused, member " in capsys.readouterr().err

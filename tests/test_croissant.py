"""The Croissant of a release: valid for mlcroissant, complete, and loading exactly what the shards hold."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acav1m_hf import datasheet
from acav1m_hf.croissant import (
    CLIPS,
    CONFORMS_TO,
    DATA_TYPES,
    dumps,
    record_set_id,
    render,
    safe_extraction,
    safe_records,
    write_croissant,
)
from acav1m_hf.facts import ReleaseFacts
from acav1m_hf.release import CROISSANT, file_sha256, index_name, list_shards
from acav1m_hf.schema import MEMBERS, flatten, index_columns
from curation.calibration import ENVIRONMENT as CALIBRATION_ENVIRONMENT
from tests.conftest import missing_dependency

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CROISSANT = REPO / "croissant" / "croissant.json"
REQUIRED_RAI = ("dataCollection", "dataBiases", "dataLimitations", "personalSensitiveInformation", "dataUseCases")


@pytest.fixture
def croissant_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private mlcroissant cache.

    mlcroissant extracts every tar into ``$CROISSANT_CACHE/extract/<sha256 of
    the contentUrl>`` and reuses that folder forever; our contentUrls are
    relative, so without this a test would read the media of whatever release
    was loaded before. The module reads the variable at import, hence the
    patch of its module-level paths as well.
    """
    from etils import epath
    from mlcroissant._src.core import constants
    from mlcroissant._src.operation_graph.operations import extract

    cache = tmp_path / "croissant-cache"
    monkeypatch.setenv("CROISSANT_CACHE", str(cache))
    monkeypatch.setattr(constants, "DOWNLOAD_PATH", epath.Path(cache / "download"))
    monkeypatch.setattr(extract, "EXTRACT_PATH", epath.Path(cache / "extract"))
    return cache


def _shard_samples(root: Path) -> dict[str, dict[str, bytes]]:
    """Every sample of every shard, read with tarfile: ``{key: {extension: bytes}}``."""
    samples: dict[str, dict[str, bytes]] = {}
    for paths in list_shards(root).values():
        for path in paths:
            with tarfile.open(path) as tar:
                for info in tar:
                    if info.isfile():
                        key, extension = info.name.split(".", 1)
                        samples.setdefault(key, {})[extension] = tar.extractfile(info).read()
    return samples


def _plain(value: Any) -> Any:
    """A record value as the JSON member would hold it (mlcroissant yields bytes for text, numpy scalars)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _same(record: Any, expected: Any) -> bool:
    if isinstance(expected, float) and record is not None:
        return np.float32(record) == np.float32(expected)  # float32 columns: compare at that precision
    if isinstance(expected, list) and isinstance(record, list):
        return len(record) == len(expected) and all(_same(r, e) for r, e in zip(record, expected, strict=True))
    return record == expected


def _mlcroissant_cli() -> str:
    cli = Path(sys.executable).with_name("mlcroissant")
    return str(cli) if cli.exists() else shutil.which("mlcroissant") or missing_dependency("mlcroissant CLI not found")


# --------------------------------------------------------------------------- structure


def test_curation_wrote_the_croissant_that_build_gives(release: Path):
    text = (release / CROISSANT).read_text(encoding="utf-8")
    assert text == dumps(render(ReleaseFacts.read(release))) == dumps(render(ReleaseFacts.read(release)))
    assert str(release) not in text  # relative paths only: the folder can move


def test_distribution_lists_every_file_with_its_sha256(release: Path):
    croissant = render(ReleaseFacts.read(release))
    files = {d["contentUrl"]: d for d in croissant["distribution"] if d["@type"] == "cr:FileObject"}
    expected = [p.relative_to(release).as_posix() for paths in list_shards(release).values() for p in paths]
    expected += [index_name(s) for s in list_shards(release)]
    assert sorted(files) == sorted(expected)
    for url, entry in files.items():
        assert entry["sha256"] == file_sha256(release / url)
        assert entry["contentSize"] == f"{(release / url).stat().st_size} B"
        assert entry["encodingFormat"] == ("application/x-tar" if url.endswith(".tar") else "application/x-parquet")
    shard_ids = [{"@id": d["@id"]} for d in files.values() if d["encodingFormat"] == "application/x-tar"]
    member_sets = [d for d in croissant["distribution"] if d.get("containedIn")]
    assert [d["includes"] for d in member_sets] == [f"*.{m.extension}" for m in MEMBERS]
    assert all(d["containedIn"] == shard_ids for d in member_sets)


def test_fields_and_rai_derive_from_schema_and_datasheet(release: Path):
    croissant = render(ReleaseFacts.read(release))
    assert croissant["conformsTo"] == CONFORMS_TO
    assert croissant["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert croissant["citeAs"] == datasheet.CITATION
    clips, *media = croissant["recordSet"]
    assert [f["@id"] for f in clips["field"]] == [f"{CLIPS}/key"] + [f"{CLIPS}/{name}" for name, _ in index_columns()]
    for field, (name, schema_field) in zip(clips["field"][1:], index_columns(), strict=True):
        assert field["source"]["extract"] == {"column": name}
        assert field["dataType"] == DATA_TYPES[schema_field.item or schema_field.kind]
        assert field.get("repeated", False) == (schema_field.kind == "list")
        assert field["description"] == schema_field.description
    assert [rs["@id"] for rs in media] == [record_set_id(m) for m in MEMBERS]
    for rs in media:
        assert rs["field"][0]["references"] == {"field": {"@id": f"{CLIPS}/key"}}
    rai = {k.removeprefix("rai:"): v for k, v in croissant.items() if k.startswith("rai:")}
    assert set(REQUIRED_RAI) <= set(rai) <= set(datasheet.RAI_PROPERTIES)
    assert all(rai.values())
    assert "alignment filtering mechanisms" in rai["dataCollection"]


# --------------------------------------------------------------------------- mlcroissant


def test_mlcroissant_cli_validates(release: Path, tmp_path: Path):
    env = {**os.environ, "CROISSANT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [_mlcroissant_cli(), "validate", "--jsonld", str(release / CROISSANT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower() and "error" not in output.lower(), output


def test_mlcroissant_reads_metadata_and_rai(release: Path, croissant_cache: Path):
    import mlcroissant as mlc

    metadata = mlc.Dataset(jsonld=str(release / CROISSANT)).metadata
    assert metadata.name == "ACAV-1M"
    assert [rs.id for rs in metadata.record_sets] == [CLIPS] + [record_set_id(m) for m in MEMBERS]
    assert metadata.data_collection and metadata.data_biases and metadata.data_limitations
    assert metadata.personal_sensitive_information and metadata.data_use_cases


def test_clips_records_are_exactly_the_shards_samples(release: Path, croissant_cache: Path):
    samples = _shard_samples(release)
    records = list(safe_records(release, CLIPS))
    keys = [r[f"{CLIPS}/key"].decode() for r in records]
    assert sorted(keys) == sorted(samples) and len(keys) == len(set(keys))
    for key, record in zip(keys, records, strict=True):
        metadata = json.loads(samples[key]["json"])
        for column, expected in flatten(metadata).items():
            got = _plain(record[f"{CLIPS}/{column}"])
            assert _same(got, expected), (key, column, got, expected)
        assert metadata["caption"]["text"] == (samples[key]["txt"].decode() if "txt" in samples[key] else None)


def test_media_records_are_the_tar_members_joined_by_key(release: Path, croissant_cache: Path):
    from PIL import Image

    samples = _shard_samples(release)
    for member in MEMBERS:
        rs = record_set_id(member)
        got = {r[f"{rs}/key"].decode(): r[f"{rs}/content"] for r in safe_records(release, rs)}
        expected = {key: members[member.extension] for key, members in samples.items() if member.extension in members}
        assert sorted(got) == sorted(expected), member.extension
        for key, content in got.items():
            if member.media == "image":
                image = Image.open(io.BytesIO(expected[key]))
                assert content.size == image.size and content.tobytes() == image.tobytes(), (key, member.extension)
            else:
                assert content == expected[key], (key, member.extension)
    assert any("mp4" in members for members in samples.values())


# --------------------------------------------------------------------------- the bundled sample Croissant


def _differences(a: Any, b: Any, path: str = "$") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                yield f"{path}.{key}: only in {'regenerated' if key in a else 'croissant/croissant.json'}"
            else:
                yield from _differences(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: regenerated {a!r} != committed {b!r}"


@pytest.fixture(scope="module")
def sample_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release `acav1m demo` curates: the bundled sample manifest with the demo's configuration."""
    from curation.config import DEMO_CONFIG
    from curation.run import curate

    root = tmp_path_factory.mktemp("sample") / "acav1m"
    with pytest.MonkeyPatch.context() as patch:  # as the demo runs: with the shipped calibration (tests/conftest.py)
        patch.delenv(CALIBRATION_ENVIRONMENT)
        curate([str(resources.files("acav1m_hf") / "sample_data" / "manifest.csv")], root, DEMO_CONFIG)
    return root


@pytest.mark.slow
def test_bundled_croissant_is_the_sample_releases(sample_release: Path):
    committed = json.loads(SAMPLE_CROISSANT.read_text(encoding="utf-8"))
    regenerated = render(ReleaseFacts.read(sample_release))
    differences = list(_differences(regenerated, committed))
    assert not differences, (
        "croissant/croissant.json is out of date (see croissant/README.md to regenerate it):\n" + "\n".join(differences)
    )
    assert SAMPLE_CROISSANT.read_text(encoding="utf-8") == dumps(regenerated)


def test_bundled_croissant_validates(croissant_cache: Path):
    import mlcroissant as mlc

    assert mlc.Dataset(jsonld=str(SAMPLE_CROISSANT)).metadata.name == "ACAV-1M"


# --------------------------------------------------------------------------- a hostile shard (mlcroissant extracts unfiltered)

OUTSIDE = "../../outside.txt"
"""A member that mlcroissant 1.1.1 extracts to ``$CROISSANT_CACHE/outside.txt``, outside its extract folder."""


def _hostile_release(release: Path, tmp_path: Path) -> Path:
    """A copy of the release whose first shard also holds `OUTSIDE`, with croissant.json's sha256 regenerated."""
    root = Path(shutil.copytree(release, tmp_path / "hostile"))
    shard = next(iter(list_shards(root).values()))[0]
    with tarfile.open(shard, "a") as tar:
        info = tarfile.TarInfo(OUTSIDE)
        info.size = len(b"written outside")
        tar.addfile(info, io.BytesIO(b"written outside"))
    write_croissant(root)
    return root


def _written_outside(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.rglob("outside.txt"))


def test_unfiltered_mlcroissant_writes_a_hostile_member_outside_its_cache(
    release: Path, tmp_path: Path, croissant_cache: Path
):
    """The hazard the safe path guards against is real: plain mlcroissant writes the member outside its cache."""
    import mlcroissant as mlc

    if sys.version_info >= (3, 14):  # Python 3.14 filters extractall by default; nothing to show there
        pytest.skip("Python >= 3.14 applies tarfile's data filter by default")
    root = _hostile_release(release, tmp_path)
    list(mlc.Dataset(jsonld=str(root / CROISSANT)).records("txt"))
    assert _written_outside(tmp_path) == [croissant_cache / "outside.txt"]


def test_safe_records_refuses_a_hostile_shard_before_mlcroissant_opens_it(
    release: Path, tmp_path: Path, croissant_cache: Path
):
    root = _hostile_release(release, tmp_path)
    shard = next(iter(list_shards(root).values()))[0].relative_to(root).as_posix()
    with pytest.raises(ValueError, match=f"^{shard}: refused, member '../../outside.txt' has a '..' part$"):
        list(safe_records(root, "txt"))
    assert _written_outside(tmp_path) == []
    assert not croissant_cache.exists()  # mlcroissant never started


def test_safe_extraction_stops_mlcroissant_writing_outside_its_cache(
    release: Path, tmp_path: Path, croissant_cache: Path
):
    """The second line of defence, without the shard check: tarfile's data filter refuses the member."""
    import mlcroissant as mlc

    root = _hostile_release(release, tmp_path)
    with safe_extraction(), pytest.raises(Exception, match="Extract") as raised:  # mlcroissant wraps the cause
        list(mlc.Dataset(jsonld=str(root / CROISSANT)).records("txt"))
    cause = raised.value.__cause__ or raised.value.__context__
    assert isinstance(cause, tarfile.OutsideDestinationError) and OUTSIDE in str(cause)
    assert _written_outside(tmp_path) == []
    assert tarfile.TarFile.extraction_filter is None  # restored after the block

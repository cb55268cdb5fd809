"""``acav1m subset`` on the session release: the clips the expression selects and no other, a valid release whose
Croissant mlcroissant loads, and a clear error for an expression that does not run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acav1m_hf.croissant import safe_records
from acav1m_hf.maintain.subset import write_subset
from acav1m_hf.release import CROISSANT, list_shards
from acav1m_hf.validate import validate_release
from tests.conftest import needs

WHERE = '"alignment.instance.score" >= 0.2 AND "split" <> \'test\''


def index_rows(root: Path) -> list[dict]:
    return [row for path in sorted((root / "metadata").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


@pytest.fixture(scope="module")
def subset(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("subset") / "sub"
    write_subset(release, out, WHERE)
    return out


def test_the_subset_holds_exactly_the_matching_clips(release: Path, subset: Path) -> None:
    expected = [
        r["key"]
        for r in index_rows(release)
        if r["alignment.instance.score"] is not None and r["alignment.instance.score"] >= 0.2 and r["split"] != "test"
    ]
    assert 0 < len(expected) < len(index_rows(release))
    assert [r["key"] for r in index_rows(subset)] == expected
    assert validate_release(subset) == []
    shard_names = [p.name for paths in list_shards(subset).values() for p in paths]
    assert not any(name.startswith("test-") for name in shard_names)
    report = json.loads((subset / "report.json").read_text())
    assert report["subset"] == {"of_version": "1.0.0", "where": WHERE, "clips": len(expected)}


def test_mlcroissant_loads_the_subsets_croissant(subset: Path, tmp_path: Path, monkeypatch) -> None:
    needs("mlcroissant")
    monkeypatch.setenv("CROISSANT_CACHE", str(tmp_path / "cache"))
    keys = sorted(record["clips/key"].decode() for record in safe_records(subset, "clips"))
    assert keys == sorted(r["key"] for r in index_rows(subset))
    listed = {
        e["contentUrl"] for e in json.loads((subset / CROISSANT).read_text())["distribution"] if "contentUrl" in e
    }
    assert {f"data/{p.name}" for paths in list_shards(subset).values() for p in paths} <= listed


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ('"no.such.column" > 1', "not found"),
        ("clip.duration >", "Parser Error"),
        ("key IN (SELECT column0 FROM read_csv('/etc/passwd'))", "disabled"),
        ('"clip.duration" < 0', "no clip"),
    ],
)
def test_a_bad_expression_is_refused_naming_it(release: Path, tmp_path: Path, where: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as error:
        write_subset(release, tmp_path / "sub", where)
    assert repr(where) in str(error.value)
    assert not (tmp_path / "sub").exists()


def test_an_existing_folder_is_never_overwritten(release: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="already exists"):
        write_subset(release, tmp_path / "sub", WHERE)
    assert (tmp_path / "sub" / "mine.txt").read_text() == "keep"

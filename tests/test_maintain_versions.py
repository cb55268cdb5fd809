"""Versions of a release: the changelog, ``acav1m diff`` between real releases, and one tagged Hub commit per version
(against the autospec'd ``HfApi`` of the ``hub`` fixture)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import GitRefInfo, GitRefs

from acav1m_hf.cli import main
from acav1m_hf.hub import push_release
from acav1m_hf.maintain import versions
from acav1m_hf.maintain.diff import diff_releases
from acav1m_hf.maintain.remove import remove_videos
from acav1m_hf.maintain.staging import STAGING
from acav1m_hf.maintain.subset import write_subset
from tests.conftest import COMMIT, REPO_ID, SAMPLE_DATA, release_files

DATE = "2025-03-04"


def first_video(root: Path) -> tuple[str, list[str]]:
    rows = pq.read_table(next(iter(sorted((root / "metadata").glob("*.parquet"))))).to_pylist()
    video = rows[0]["source.video_id"]
    index = [r for p in sorted((root / "metadata").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return video, sorted(r["key"] for r in index if r["source.video_id"] == video)


@pytest.fixture
def removed(release: Path, tmp_path: Path) -> tuple[Path, str, list[str]]:
    root = Path(shutil.copytree(release, tmp_path / "acav1m"))
    video, keys = first_video(root)
    remove_videos(root, [video], "owner asked", date=DATE)
    return root, video, keys


def test_changelog_sections_stack_newest_first_and_read_back() -> None:
    text = versions.add_entry(None, "1.1.0", "2025-01-01", "Removed a.")
    text = versions.add_entry(text, "1.2.0", "2025-02-01", "Removed b.")
    assert text.index("## 1.2.0") < text.index("## 1.1.0")
    assert versions.entry(text, "1.1.0") == "Removed a." and versions.entry(text, "1.2.0") == "Removed b."
    assert versions.entry(text, "1.0.0") is None
    assert versions.bump_minor("1.2.3") == "1.3.0"
    with pytest.raises(ValueError, match="'v1' is not MAJOR.MINOR.PATCH"):
        versions.bump_minor("v1")


def test_a_second_removal_makes_the_next_version(removed) -> None:
    root, _, _ = removed
    video, _ = first_video(root)
    assert remove_videos(root, [video], "second request", date="2025-04-01").version == "1.2.0"
    changelog = (root / versions.CHANGELOG).read_text()
    assert versions.entry(changelog, "1.2.0").startswith("Removed") and "## 1.1.0" in changelog


def test_diff_lists_the_removed_clips(release: Path, removed, capsys) -> None:
    root, _, keys = removed
    diff = diff_releases(release, root)
    assert (diff.old_version, diff.new_version, diff.added, diff.removed, diff.changed) == (
        "1.0.0",
        "1.1.0",
        [],
        keys,
        {},
    )
    assert main(["diff", str(release), str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"1.0.0 -> 1.1.0: 0 added, {len(keys)} removed, 0 changed", *(f"- {k}" for k in keys)]
    assert diff_releases(root, release).added == keys


def test_diff_names_the_changed_columns_of_a_clip(release: Path, tmp_path: Path) -> None:
    changed = Path(shutil.copytree(release, tmp_path / "changed"))
    path = sorted((changed / "metadata").glob("*.parquet"))[0]
    table = pq.read_table(path)
    captions = table["caption.text"].to_pylist()
    captions[0] = "a corrected caption"
    pq.write_table(
        table.set_column(table.schema.get_field_index("caption.text"), "caption.text", pa.array(captions)), path
    )
    assert diff_releases(release, changed).changed == {table["key"][0].as_py(): ["caption.text"]}


def test_diff_of_a_subset_lists_what_it_left_out(release: Path, tmp_path: Path) -> None:
    write_subset(release, tmp_path / "sub", "\"split\" = 'train'")
    diff = diff_releases(release, tmp_path / "sub")
    train = set(pq.read_table(release / "metadata" / "train.parquet")["key"].to_pylist())
    every = {k for p in (release / "metadata").glob("*.parquet") for k in pq.read_table(p)["key"].to_pylist()}
    assert diff.added == [] and diff.changed == {}
    assert train and diff.removed == sorted(every - train)


def test_push_makes_one_tagged_commit_per_version_with_its_changelog_entry(removed, hub: SimpleNamespace) -> None:
    root, video, _ = removed
    push_release(root, REPO_ID)
    entry = versions.entry((root / versions.CHANGELOG).read_text(), "1.1.0")
    message = hub.api.upload_folder.call_args.kwargs["commit_message"]
    assert message == f"ACAV-1M release 1.1.0: {entry}" and video in message
    hub.api.create_tag.assert_called_once_with(
        REPO_ID, tag="v1.1.0", tag_message=message, revision=COMMIT.oid, token=None, repo_type="dataset"
    )
    assert {"CHANGELOG.md", "removals.jsonl"} <= set(hub.api.upload_folder.call_args.kwargs["allow_patterns"])


def test_a_version_already_tagged_on_the_hub_is_not_pushed_again(removed, hub: SimpleNamespace) -> None:
    root, _, _ = removed
    tag = GitRefInfo(name="v1.1.0", ref="refs/tags/v1.1.0", target_commit=COMMIT.oid)
    hub.api.list_repo_refs.return_value = GitRefs(branches=[], converts=[], tags=[tag])
    with pytest.raises(ValueError, match=r"version 1.1.0 \(v1.1.0\) is already on the Hub"):
        push_release(root, REPO_ID)
    hub.api.upload_folder.assert_not_called()
    hub.api.create_tag.assert_not_called()


def test_a_schema_change_is_a_major_version() -> None:
    assert versions.next_version("1.3.0", "1.0", "2.0") == "2.0.0"
    assert versions.next_version("1.3.0", "1.0", "1.0") == "1.4.0"


@pytest.mark.parametrize(
    "command", [["remove", "--video-id", "bbb_excerpt"], ["subset", "-o", "SUB", "--where", "true"], ["extend", "IN"]]
)
def test_maintenance_refuses_a_release_under_another_schema(command: list[str], release_copy: Path, capsys) -> None:
    """Its shards keep their bytes, so the card, Croissant and index this code renders would describe them wrongly:
    the refusal names both schemas, the acav1m that wrote it and the major version a new curation would be."""
    from curation.cli import main as acav1m

    report = json.loads((release_copy / "report.json").read_text())
    (release_copy / "report.json").write_text(json.dumps({**report, "schema": "0.9"}))
    before = release_files(release_copy)
    args = [
        a.replace("SUB", str(release_copy) + "-sub").replace("IN", str(SAMPLE_DATA / "manifest.csv")) for a in command
    ]
    assert acav1m([args[0], str(release_copy), *args[1:]]) == 2
    error = capsys.readouterr().err
    assert f"{release_copy}: written under schema 0.9 (acav1m {report['acav1m_version']})" in error, error
    assert "this acav1m writes schema 1.0" in error and "release version 2.0.0" in error
    assert release_files(release_copy) == before


def test_a_folder_with_an_edit_left_pending_is_not_pushed(release_copy: Path, hub: SimpleNamespace) -> None:
    (release_copy / STAGING).mkdir()
    with pytest.raises(ValueError, match=r"an edit that a kill interrupted is pending \(\.maintain/\)"):
        push_release(release_copy, REPO_ID)
    hub.api.upload_folder.assert_not_called()

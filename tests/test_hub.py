"""`acav1m_hf.hub`: the exact ``huggingface_hub`` calls it sends, checked against the library's real signatures.

``HfApi`` and ``snapshot_download`` are replaced by ``unittest.mock.create_autospec``
mocks (the ``hub`` fixture of conftest): a call with a parameter the installed huggingface_hub does not have
fails, and each test asserts the calls and their arguments. What the patterns
select is checked with huggingface_hub's own matcher (``filter_repo_objects``,
which ``upload_folder`` and ``snapshot_download`` apply to ``allow_patterns``
and ``delete_patterns``). No test talks to the Hub: what the Hub does with
the calls (authentication, rate limits, large uploads) is not tested here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import call

import pytest
from huggingface_hub.utils import filter_repo_objects

from acav1m_hf.hub import RELEASE_PATTERNS, STALE_PATTERNS, download_release, push_release, shard_urls
from acav1m_hf.loading import load
from acav1m_hf.release import list_shards
from acav1m_hf.validate import validate_release
from tests.conftest import COMMIT, REPO_ID


def files_of(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def expected_upload(root: Path, token: str | None) -> dict:
    shards = sum(len(s) for s in list_shards(root).values())
    return {
        "repo_id": REPO_ID,
        "folder_path": str(root),
        "repo_type": "dataset",
        "token": token,
        "revision": None,
        "allow_patterns": list(RELEASE_PATTERNS),
        "delete_patterns": list(STALE_PATTERNS),
        "commit_message": f"ACAV-1M release 1.0.0 ({shards} shards)",
    }


def test_push_sends_one_create_repo_and_one_upload_folder(release_copy: Path, hub: SimpleNamespace):
    url = push_release(release_copy, REPO_ID, token="hf_fake", private=True)
    assert url == COMMIT.commit_url
    hub.api_class.assert_called_once_with(token="hf_fake")
    assert hub.api.method_calls == [
        call.create_repo(REPO_ID, token="hf_fake", private=True, repo_type="dataset", exist_ok=True),
        call.list_repo_refs(REPO_ID, repo_type="dataset", token="hf_fake"),
        call.upload_folder(**expected_upload(release_copy, "hf_fake")),
        call.create_tag(
            REPO_ID,
            tag="v1.0.0",
            tag_message=expected_upload(release_copy, "hf_fake")["commit_message"],
            revision=COMMIT.oid,
            token="hf_fake",
            repo_type="dataset",
        ),
    ]
    hub.snapshot.assert_not_called()


def test_the_upload_patterns_select_the_release_layout_and_nothing_else(release_copy: Path, hub: SimpleNamespace):
    """Files a user or an earlier run left in the folder stay local; a root ``*.py`` would break datasets >= 4."""
    layout = files_of(release_copy)
    (release_copy / "acav1m.py").write_text("# a script at the root would make datasets>=4 refuse the repo\n")
    (release_copy / "_work").mkdir(exist_ok=True)
    (release_copy / "_work" / "scratch.tar").write_bytes(b"x")
    (release_copy / "notes.txt").write_text("mine\n")
    push_release(release_copy, REPO_ID)
    sent = hub.api.upload_folder.call_args.kwargs
    uploaded = sorted(filter_repo_objects(files_of(release_copy), allow_patterns=sent["allow_patterns"]))
    assert uploaded == layout
    assert {"README.md", "croissant.json", "report.json", "inputs.jsonl"} <= set(uploaded)
    assert {f"data/{p.name}" for s in list_shards(release_copy).values() for p in s} <= set(uploaded)


def test_a_second_push_deletes_stale_shards_and_nothing_a_user_added(release_copy: Path, hub: SimpleNamespace):
    """The remote files that ``delete_patterns`` matches and this push does not re-upload are the stale ones.

    ``upload_folder`` deletes the remote files matching ``delete_patterns``
    except those it uploads (its documented behaviour); the remote listing
    is a previous, larger push plus files a user added on the Hub.
    """
    push_release(release_copy, REPO_ID)
    sent = hub.api.upload_folder.call_args.kwargs
    uploaded = set(filter_repo_objects(files_of(release_copy), allow_patterns=sent["allow_patterns"]))
    stale = {"data/train-00099.tar", "metadata/old-split.parquet"}
    user_files = {".gitattributes", "docs/paper.md", "loading_script/acav1m.py", "data/README.md"}
    remote = sorted(uploaded | stale | user_files)
    deleted = set(filter_repo_objects(remote, allow_patterns=sent["delete_patterns"])) - uploaded
    assert deleted == stale


def test_push_refuses_an_invalid_release_before_any_call(release_copy: Path, hub: SimpleNamespace):
    shard = list_shards(release_copy)["train"][0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"fails validation; not pushing:\n  .*{shard.name}"):
        push_release(release_copy, REPO_ID)
    with pytest.raises(FileNotFoundError, match="README.md"):
        push_release(release_copy / "data", REPO_ID)
    hub.api_class.assert_not_called()


def test_download_sends_one_snapshot_download(tmp_path: Path, hub: SimpleNamespace):
    hub.snapshot.return_value = str(tmp_path / "local")
    out = download_release(REPO_ID, tmp_path / "local", revision="v1.0")
    assert out == tmp_path / "local"
    hub.snapshot.assert_called_once_with(
        REPO_ID,
        repo_type="dataset",
        revision="v1.0",
        local_dir=str(tmp_path / "local"),
        token=None,
        allow_patterns=list(RELEASE_PATTERNS),
    )
    download_release(REPO_ID, tmp_path / "one", patterns=["README.md", "data/validation-*.tar"])
    assert hub.snapshot.call_args.kwargs["allow_patterns"] == ["README.md", "data/validation-*.tar"]
    hub.api_class.assert_not_called()


def test_what_a_download_selects_is_a_whole_release_that_loads_offline(release: Path, tmp_path: Path):
    """The files of a pushed release that ``RELEASE_PATTERNS`` select (what the download asks for) validate and load."""
    local = tmp_path / "local"
    for name in filter_repo_objects(files_of(release), allow_patterns=list(RELEASE_PATTERNS)):
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(release / name, local / name)
    assert validate_release(local) == []
    loaded = load(local, split="validation", cache_dir=str(tmp_path / "cache"))
    assert loaded["__key__"] == load(release, split="validation", cache_dir=str(tmp_path / "cache2"))["__key__"]


def test_shard_urls_for_streaming_from_the_hub(release: Path, hub: SimpleNamespace):
    listing = [*files_of(release), "data/README.md", "old/data/train-00000.tar", ".gitattributes"]
    hub.api.list_repo_files.return_value = listing
    urls = shard_urls(REPO_ID, "train", revision="main")
    assert urls == [
        f"https://huggingface.co/datasets/{REPO_ID}/resolve/main/data/{p.name}" for p in list_shards(release)["train"]
    ]
    hub.api.list_repo_files.assert_called_once_with(REPO_ID, repo_type="dataset", revision="main", token=None)
    with pytest.raises(ValueError, match=r"no 'dev' shards in data/ \(splits with shards: test, train, validation\)"):
        shard_urls(REPO_ID, "dev")

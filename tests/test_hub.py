"""`acav1m_hf.hub` against a fake Hub: the calls are checked, no network is used.

The fake methods bind their arguments to the real ``HfApi`` /
``snapshot_download`` signatures, so a renamed or removed parameter in
huggingface_hub fails here; what the real Hub does with the calls is not tested.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.utils import filter_repo_objects

from acav1m_hf.hub import RELEASE_PATTERNS, download_release, push_release, shard_urls
from acav1m_hf.loading import load
from acav1m_hf.release import list_shards

REAL = {
    "create_repo": huggingface_hub.HfApi.create_repo,
    "upload_folder": huggingface_hub.HfApi.upload_folder,
    "snapshot_download": huggingface_hub.snapshot_download,
    "list_repo_files": huggingface_hub.HfApi.list_repo_files,
}
"""The real functions, captured before the fixture patches them: the fakes bind to their signatures."""


class FakeHub:
    """An in-memory dataset repository store with the semantics push/download rely on (patterns, deletes)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.calls: list[tuple[str, dict]] = []

    def _bind(self, name: str, *args, **kwargs) -> dict:
        bound = inspect.signature(REAL[name]).bind(*args, **kwargs)
        self.calls.append((name, dict(bound.arguments)))
        return bound.arguments

    def create_repo(self, *args, **kwargs):
        a = self._bind("create_repo", self, *args, **kwargs)
        (self.store / a["repo_id"]).mkdir(parents=True, exist_ok=True)
        return f"https://huggingface.co/datasets/{a['repo_id']}"

    def upload_folder(self, *args, **kwargs):
        a = self._bind("upload_folder", self, *args, **kwargs)
        repo, folder = self.store / a["repo_id"], Path(a["folder_path"])
        local = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        chosen = set(filter_repo_objects(local, allow_patterns=a.get("allow_patterns")))
        remote = [p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()]
        for stale in filter_repo_objects(remote, allow_patterns=a.get("delete_patterns")):
            if stale not in chosen:
                (repo / stale).unlink()
        for name in chosen:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / name, repo / name)
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/datasets/{a['repo_id']}/commit/0"})()

    def list_repo_files(self, *args, **kwargs) -> list[str]:
        a = self._bind("list_repo_files", self, *args, **kwargs)
        repo = self.store / a["repo_id"]
        return [p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()]

    def snapshot_download(self, *args, **kwargs) -> str:
        a = self._bind("snapshot_download", *args, **kwargs)
        repo, out = self.store / a["repo_id"], Path(a["local_dir"])
        remote = [p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()]
        for name in filter_repo_objects(remote, allow_patterns=a.get("allow_patterns")):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo / name, out / name)
        return str(out)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch) -> FakeHub:
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, *a, **k: fake.create_repo(*a, **k))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, *a, **k: fake.upload_folder(*a, **k))
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, *a, **k: fake.list_repo_files(*a, **k))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    return fake


def test_push_uploads_the_release_layout_as_a_dataset_repo(release_copy: Path, hub: FakeHub):
    (release_copy / "acav1m.py").write_text("# a script at the root would make datasets>=4 refuse the repo\n")
    (release_copy / "_work").mkdir(exist_ok=True)
    (release_copy / "_work" / "scratch.tar").write_bytes(b"x")
    url = push_release(release_copy, "someone/acav1m", token="hf_fake", private=True)
    assert url.endswith("/commit/0")
    (create_name, create), (upload_name, upload) = hub.calls
    assert create_name == "create_repo" and upload_name == "upload_folder"
    assert create["repo_id"] == "someone/acav1m" and create["repo_type"] == "dataset"
    assert create["private"] is True and create["exist_ok"] is True and create["token"] == "hf_fake"
    assert upload["repo_type"] == "dataset" and upload["folder_path"] == str(release_copy)
    assert upload["allow_patterns"] == list(RELEASE_PATTERNS)
    assert "data/*.tar" in upload["delete_patterns"]
    pushed = sorted(
        p.relative_to(hub.store / "someone/acav1m").as_posix()
        for p in (hub.store / "someone/acav1m").rglob("*")
        if p.is_file()
    )
    assert "acav1m.py" not in pushed and not any(p.startswith("_work") for p in pushed)
    assert {"README.md", "croissant.json"} <= set(pushed)
    assert {f"data/{p.name}" for s in list_shards(release_copy).values() for p in s} <= set(pushed)


def test_a_second_push_removes_stale_shards(release_copy: Path, hub: FakeHub):
    stale = hub.store / "someone/acav1m" / "data" / "train-00099.tar"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    push_release(release_copy, "someone/acav1m")
    assert not stale.exists()


def test_push_refuses_an_invalid_release(release_copy: Path, hub: FakeHub):
    shard = list_shards(release_copy)["train"][0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="fails validation; not pushing"):
        push_release(release_copy, "someone/acav1m")
    assert hub.calls == []
    with pytest.raises(FileNotFoundError, match="README.md"):
        push_release(release_copy / "data", "someone/acav1m")


def test_download_round_trip_loads_offline(release: Path, tmp_path: Path, hub: FakeHub):
    push_release(release, "someone/acav1m")
    out = download_release("someone/acav1m", tmp_path / "local", revision="v1.0")
    name, call = hub.calls[-1]
    assert name == "snapshot_download" and call["repo_type"] == "dataset" and call["revision"] == "v1.0"
    assert call["local_dir"] == str(tmp_path / "local") and call["allow_patterns"] == list(RELEASE_PATTERNS)
    assert out == tmp_path / "local"
    assert {s: [p.name for p in ps] for s, ps in list_shards(out).items()} == {
        s: [p.name for p in ps] for s, ps in list_shards(release).items()
    }
    loaded = load(out, split="validation", cache_dir=str(tmp_path / "cache"))
    assert loaded["__key__"] == load(release, split="validation", cache_dir=str(tmp_path / "cache2"))["__key__"]


def test_download_can_narrow_to_one_split(release: Path, tmp_path: Path, hub: FakeHub):
    push_release(release, "someone/acav1m", validate=False)
    out = download_release("someone/acav1m", tmp_path / "local", patterns=["README.md", "data/validation-*.tar"])
    assert list(list_shards(out)) == ["validation"]


def test_shard_urls_for_streaming_from_the_hub(release: Path, hub: FakeHub):
    push_release(release, "someone/acav1m", validate=False)
    urls = shard_urls("someone/acav1m", "train", revision="main")
    assert urls == [
        f"https://huggingface.co/datasets/someone/acav1m/resolve/main/data/{p.name}"
        for p in list_shards(release)["train"]
    ]
    assert hub.calls[-1][1]["repo_type"] == "dataset"
    with pytest.raises(ValueError, match=r"no 'dev' shards in data/ \(splits with shards: "):
        shard_urls("someone/acav1m", "dev")

"""``acav1m remove`` on a release curated in the session: the videos' clips are gone from every file, the other
shards keep their bytes, the result is valid and the same every time, and a SIGKILL at any event of the edit leaves
the old release or, after a rerun, the same new one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acav1m_hf.lock import LOCK
from acav1m_hf.maintain.remove import REMOVALS, remove_videos
from acav1m_hf.maintain.staging import STAGING
from acav1m_hf.release import CROISSANT, list_shards
from acav1m_hf.validate import validate_release
from tests.conftest import release_files

REPO = Path(__file__).resolve().parents[1]
DATE = "2025-03-04"


def index_rows(root: Path) -> list[dict]:
    return [row for path in sorted((root / "metadata").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def a_video_to_remove(root: Path) -> tuple[str, set[str]]:
    """The video of the first clip in the index, and the shards that hold its clips."""
    rows = index_rows(root)
    video = rows[0]["source.video_id"]
    return video, {r["shard"] for r in rows if r["source.video_id"] == video}


@pytest.fixture(scope="module")
def removed(release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, set[str]]:
    root = Path(shutil.copytree(release, tmp_path_factory.mktemp("removed") / "acav1m"))
    video, shards = a_video_to_remove(root)
    result = remove_videos(root, [video], "owner asked", date=DATE)
    assert result.version == "1.1.0" and result.clips > 0
    return root, video, shards


def test_removal_leaves_a_valid_release_without_any_clip_of_the_video(release: Path, removed) -> None:
    root, video, shards = removed
    assert validate_release(root) == []
    rows = index_rows(root)
    before = [r for r in index_rows(release) if r["source.video_id"] == video]
    assert rows and video not in {r["source.video_id"] for r in rows}
    assert len(rows) == len(index_rows(release)) - len(before)
    gone = {r["key"] for r in before}
    for paths in list_shards(root).values():
        for shard in paths:
            with tarfile.open(shard) as tar:
                assert not {m.name.split(".")[0] for m in tar} & gone, shard
    croissant = (root / CROISSANT).read_text(encoding="utf-8")
    assert not any(key in croissant for key in gone)
    assert json.loads(croissant)["version"] == "1.1.0" and json.loads(croissant)["dateModified"] == DATE
    assert "\nversion: 1.1.0\n" in (root / "README.md").read_text(encoding="utf-8")


def test_only_the_shards_that_held_the_video_change(release: Path, removed) -> None:
    root, _, shards = removed
    old, new = release_files(release), release_files(root)
    untouched = [name for name in old if name.startswith("data/") and name not in shards]
    assert untouched, "the session release should have a shard without the video"
    for name in untouched:
        assert new[name] == old[name], name
    for name in shards:
        assert new.get(name) != old[name], name


def test_the_report_inputs_and_records_count_the_removal(release: Path, removed) -> None:
    root, video, _ = removed
    n = sum(r["source.video_id"] == video for r in index_rows(release))
    old = json.loads((release / "report.json").read_text())
    new = json.loads((root / "report.json").read_text())
    assert new["counts"]["clips"]["kept"] == old["counts"]["clips"]["kept"] - n
    assert new["reasons"]["clips"]["removed"] == n
    assert new["filter_counts"]["instance"]["judged"] == old["filter_counts"]["instance"]["judged"] - n
    assert new["release_version"] == "1.1.0"
    assert [json.loads(line) for line in (root / REMOVALS).read_text().splitlines()] == [
        {"clips": n, "date": DATE, "reason": "owner asked", "version": "1.1.0", "video_ids": [video]}
    ]
    changelog = (root / "CHANGELOG.md").read_text()
    assert f"## 1.1.0 ({DATE})" in changelog and video in changelog and "owner asked" in changelog
    lines = [json.loads(line) for line in (root / "inputs.jsonl").read_text().splitlines()]
    assert len(lines) == len((release / "inputs.jsonl").read_text().splitlines())  # no input line dropped
    assert all(line["outcome"] == "rejected" for line in lines if line["video_id"] == video)


def test_the_same_removal_gives_the_same_bytes_and_a_repeat_changes_nothing(release: Path, removed, tmp_path) -> None:
    root, video, _ = removed
    again = Path(shutil.copytree(release, tmp_path / "again"))
    remove_videos(again, [video], "owner asked", date=DATE)
    assert release_files(again) == release_files(root)
    assert remove_videos(again, [video], "owner asked", date=DATE).version is None
    assert release_files(again) == release_files(root)


def test_an_unknown_video_id_is_refused_naming_it(release_copy: Path) -> None:
    before = release_files(release_copy)
    with pytest.raises(ValueError, match="no clip of video id\\(s\\) no-such-video"):
        remove_videos(release_copy, ["no-such-video"], "x", date=DATE)
    assert release_files(release_copy) == before


def run_remove(root: Path, video: str, crash: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ACAV1M_TEST_CRASH", None)
    if crash:
        env["ACAV1M_TEST_CRASH"] = crash
    command = [sys.executable, "-m", "acav1m_hf.cli", "remove", str(root), "--video-id", video]
    command += ["--reason", "owner asked", "--date", DATE]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("crash", ["maintain_stage:2", "maintain_switch:1", "maintain_replace:2"])
def test_a_removal_killed_at_an_event_leaves_the_old_release_or_completes_on_rerun(
    crash: str, release: Path, removed, tmp_path: Path
) -> None:
    reference, video, _ = removed
    root = Path(shutil.copytree(release, tmp_path / "acav1m"))
    killed = run_remove(root, video, crash)
    assert killed.returncode == -9, killed.stderr
    visible = {k: v for k, v in release_files(root).items() if not k.startswith((f"{STAGING}/", LOCK))}
    if crash == "maintain_stage:2":  # before the switch was decided: the old release, untouched
        assert visible == release_files(release)
    rerun = run_remove(root, video, None)
    assert rerun.returncode == 0, rerun.stderr
    assert release_files(root) == release_files(reference)

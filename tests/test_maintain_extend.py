"""``acav1m extend`` on releases curated in the session: a release of the sample manifest extended by the session's
inputs (the manifest again, plus the synthetic clips) holds the clips of one run of them all, keeps its old shards'
bytes, records the inputs it already had, makes the next version, refuses other settings naming them, and finishes
after a SIGKILL at any event."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acav1m_hf.lock import LOCK, output_lock
from acav1m_hf.maintain import versions
from acav1m_hf.maintain.remove import remove_videos
from acav1m_hf.release import CROISSANT, file_sha256
from acav1m_hf.validate import validate_release
from curation.extend import SCRATCH, extend
from curation.run import curate
from tests.conftest import DEDUP_EVERY_CLIP, RELEASE_CONFIG, needs, release_files, release_inputs, tiny_paper

REPO = Path(__file__).resolve().parents[1]
DATE = "2025-05-06"


def index_rows(root: Path) -> dict[str, dict]:
    """Index rows by key, without ``shard`` (where a clip lies is not what it is)."""
    rows = [row for path in sorted((root / "metadata").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    return {row["key"]: {k: v for k, v in row.items() if k not in ("key", "shard")} for row in rows}


def input_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "inputs.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The session release's inputs: the sample manifest, then the synthetic clips' manifest."""
    return release_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def original(inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release of the sample manifest alone (do not modify it)."""
    root = tmp_path_factory.mktemp("original") / "acav1m"
    curate(inputs[:1], root, RELEASE_CONFIG)
    return root


@pytest.fixture(scope="module")
def extended(original: Path, inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(shutil.copytree(original, tmp_path_factory.mktemp("extended") / "acav1m"))
    result = extend(root, inputs, date=DATE)
    assert result.version == "1.1.0" and result.extension is not None
    return root


@pytest.fixture(scope="module")
def one_run(inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of all the inputs, with the same profile as ``original`` and the extension (captions condensed)."""
    root = tmp_path_factory.mktemp("one_run") / "acav1m"
    curate(inputs, root, RELEASE_CONFIG)
    return root


def test_the_extension_is_valid_and_holds_the_clips_of_one_run(extended: Path, one_run: Path) -> None:
    assert validate_release(extended) == []
    assert index_rows(extended) == index_rows(one_run)
    assert not (extended / SCRATCH).exists()


def test_old_shards_stay_byte_identical_and_new_ones_follow(original: Path, extended: Path) -> None:
    old, new = release_files(original), release_files(extended)
    shards = sorted(name for name in old if name.startswith("data/"))
    assert shards and all(new[name] == old[name] for name in shards)
    added = sorted(name for name in new if name.startswith("data/") and name not in old)
    assert added and all(name > max(s for s in shards if s.split("-")[0] == name.split("-")[0]) for name in added)
    croissant = json.loads((extended / CROISSANT).read_text())
    sha256 = {d["contentUrl"]: d.get("sha256") for d in croissant["distribution"] if "contentUrl" in d}
    assert all(sha256[name] == file_sha256(extended / name) for name in added)


def test_inputs_already_in_the_release_are_recorded_as_duplicate_input(
    original: Path, extended: Path, one_run: Path
) -> None:
    old, new = input_lines(original), input_lines(extended)
    assert new[: len(old)] == old  # the old lines unchanged, the new ones after
    added = new[len(old) :]
    duplicates = [line for line in added if line["reason"] == "duplicate_input"]
    assert sorted(line["input"] for line in duplicates) == sorted(line["input"] for line in old)
    assert all(line["outcome"] == "rejected" and "version 1.0.0" in line["detail"] for line in duplicates)
    before, after = (
        json.loads((original / "report.json").read_text()),
        json.loads((extended / "report.json").read_text()),
    )
    single = json.loads((one_run / "report.json").read_text())
    assert after["reasons"]["inputs"]["duplicate_input"] == len(old)
    assert after["counts"]["inputs"]["total"] == before["counts"]["inputs"]["total"] + len(added)
    assert after["counts"]["clips"] == single["counts"]["clips"]  # the clips counted as in one run
    for key in ("filter_counts", "pass_rates", "analysed_clips", "realigned"):
        assert after[key] == single[key], key
    clips = {split: (stats["clips"], stats["seconds"]) for split, stats in after["splits"].items()}
    assert clips == {split: (stats["clips"], stats["seconds"]) for split, stats in single["splits"].items()}
    assert after["splits"]["train"]["shards"] == before["splits"]["train"]["shards"] + 1


def test_the_extension_is_the_next_minor_version_with_its_changelog_entry(extended: Path) -> None:
    report = json.loads((extended / "report.json").read_text())
    assert (report["release_version"], report["date_modified"]) == ("1.1.0", DATE)
    croissant = json.loads((extended / CROISSANT).read_text())
    assert (croissant["version"], croissant["dateModified"]) == ("1.1.0", DATE)
    assert "\nversion: 1.1.0\n" in (extended / "README.md").read_text()
    entry = versions.entry((extended / versions.CHANGELOG).read_text(), "1.1.0")
    assert entry.startswith("Extended with 4 clip(s) from 7 input(s); 5 of them already in the release"), entry


def test_a_rerun_changes_nothing(extended: Path, inputs: list[str], tmp_path: Path) -> None:
    root = Path(shutil.copytree(extended, tmp_path / "acav1m"))
    assert extend(root, inputs, date="2026-01-01").version is None
    assert release_files(root) == release_files(extended)


def test_another_setting_is_refused_naming_it(original: Path, inputs: list[str], tmp_path: Path) -> None:
    root = Path(shutil.copytree(original, tmp_path / "acav1m"))
    before = release_files(root)
    with pytest.raises(ValueError, match=r"config\.clip_seconds: 4\.0 in the release, 5\.0 here"):
        extend(root, inputs, RELEASE_CONFIG.with_overrides(clip_seconds=5.0), date=DATE)
    cli = run_cli("curation.cli", "extend", str(root), *inputs, "--clip-seconds", "5", "--keep-flagged")
    assert cli.returncode == 2 and "config.clip_seconds: 4.0 in the release, 5.0 here" in cli.stderr, cli.stderr
    assert release_files(root) == before


def test_a_removed_video_is_not_brought_back(original: Path, inputs: list[str], tmp_path: Path) -> None:
    root = Path(shutil.copytree(original, tmp_path / "acav1m"))
    remove_videos(root, ["bbb_excerpt"], "owner asked", date=DATE)
    assert extend(root, inputs, date=DATE).version == "1.2.0"
    assert validate_release(root) == []
    assert not [row for row in index_rows(root).values() if row["source.video_id"] == "bbb_excerpt"]
    (line,) = [line for line in input_lines(root)[len(input_lines(original)) :] if "bbb_excerpt" in line["input"]]
    assert (line["reason"], line["detail"]) == ("removed", "video bbb_excerpt removed in version 1.1.0")


def test_a_clip_whose_key_the_release_holds_is_removed_as_duplicate_key(
    release_copy: Path, release: Path, tmp_path: Path
) -> None:
    """Another window of a video in the release cuts a clip at the same second: that clip is not added twice."""
    source = next((release.parent / "inputs").glob("synthetic_1.mp4"))
    manifest = tmp_path / "window.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "video_id", "start", "end"], [str(source), "synthetic_1", 0, 4.5]])
    extend(release_copy, [str(manifest)], date=DATE)
    assert validate_release(release_copy) == []
    assert index_rows(release_copy) == index_rows(release)
    line = input_lines(release_copy)[-1]
    assert (line["outcome"], line["reason"], line["clips_rejected"]) == (
        "rejected",
        "duplicate_key",
        {"duplicate_key": 1},
    )


def test_near_duplicates_of_the_release_clips_are_removed_and_recorded(inputs: list[str], tmp_path: Path) -> None:
    """With a threshold of -1 every clip duplicates the first one kept: the release's one clip stays, and each new
    clip is removed as its near-duplicate, recorded as one run records it."""
    needs("torch", "imagebind")
    root = tmp_path / "acav1m"
    before = curate(inputs[:1], root, DEDUP_EVERY_CLIP, profile_factory=tiny_paper)
    (kept,) = index_rows(root)
    result = extend(root, inputs[1:], date=DATE, profile_factory=tiny_paper)
    assert validate_release(root) == []
    assert list(index_rows(root)) == [kept]
    report = json.loads((root / "report.json").read_text())
    new = {k: v for k, v in report["near_duplicates"].items() if k not in before["near_duplicates"]}
    assert len(new) == result.extension.near_duplicates >= 2
    assert {of for of, _ in new.values()} == {kept}
    assert report["reasons"]["clips"]["near_duplicate"] == len(before["near_duplicates"]) + len(new)
    synthetic = input_lines(root)[-2:]
    assert [line["reason"] for line in synthetic] == ["near_duplicate"] * 2, synthetic


def run_cli(module: str, *args: str, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ACAV1M_TEST_CRASH", None)
    if crash:
        env["ACAV1M_TEST_CRASH"] = crash
    return subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("crash", ["unit_done:1", "maintain_stage:3", "maintain_switch:1", "maintain_replace:2"])
def test_an_extension_killed_at_an_event_leaves_the_old_release_or_completes_on_rerun(
    crash: str, original: Path, extended: Path, inputs: list[str], tmp_path: Path
) -> None:
    root = Path(shutil.copytree(original, tmp_path / "acav1m"))
    command = ("curation.cli", "extend", str(root), *inputs, "--date", DATE)
    killed = run_cli(*command, crash=crash)
    assert killed.returncode == -9, killed.stderr
    if crash in ("unit_done:1", "maintain_stage:3"):  # before the switch was decided: the old release, untouched
        left = (".maintain/", f"{SCRATCH}/", LOCK)  # the staged files, the units' work, the dead holder's lock file
        visible = {k: v for k, v in release_files(root).items() if not k.startswith(left)}
        assert visible == release_files(original)
    rerun = run_cli(*command)
    assert rerun.returncode == 0, rerun.stderr
    assert release_files(root) == release_files(extended)


@pytest.mark.parametrize(
    "command",
    [
        ("acav1m_hf.cli", "remove", "{root}", "--video-id", "bbb_excerpt"),
        ("acav1m_hf.cli", "subset", "{root}", "-o", "{root}-sub", "--where", "true"),
        ("curation.cli", "extend", "{root}", "{input}"),
    ],
    ids=["remove", "subset", "extend"],
)
def test_a_second_command_on_a_folder_is_refused_naming_the_holder(
    command: tuple[str, ...], release_copy: Path, inputs: list[str]
) -> None:
    before = release_files(release_copy)
    with output_lock(release_copy):
        result = run_cli(*(part.format(root=release_copy, input=inputs[1]) for part in command))
    assert result.returncode == 2, result.stderr
    assert f"{release_copy} is being written by process {os.getpid()}; wait for it to end" in result.stderr
    assert release_files(release_copy) == before

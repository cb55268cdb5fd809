"""End-to-end curation on real and synthetic clips: outcomes, determinism, splits, re-alignment, resume."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acav1m_hf import release as layout
from acav1m_hf.validate import iter_samples, validate_release
from curation.config import CurationConfig
from curation.decode import decode_clips
from curation.inputs import read_inputs
from curation.run import CurationError, curate
from tests.synthetic import (
    make_clip,
    write_audio_only,
    write_corrupt_file,
    write_silent,
    write_video_file,
    write_video_only,
)

FAST = CurationConfig(clip_seconds=4.0, max_side=128)


def _lines(root: Path) -> dict[str, dict]:
    return {Path(line["input"]).name: line for line in map(json.loads, (root / layout.INPUTS).read_text().splitlines())}


def test_every_bad_input_gets_its_recorded_reason(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_video_file(inputs / "good.mp4", make_clip(seconds=5.0, seed=3))
    write_corrupt_file(inputs / "corrupt.mp4")
    write_video_only(inputs / "video_only.mp4")
    write_audio_only(inputs / "audio_only.mp4")
    write_silent(inputs / "silent.mp4")
    write_video_file(inputs / "short.mp4", make_clip(seconds=0.6, seed=4))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,start,end\nmissing.mp4,,\nin/good.mp4,3,1\n")
    root = tmp_path / "out"
    report = curate([str(inputs), str(manifest), str(tmp_path / "nope.mkv")], root, FAST)

    lines = _lines(root)
    assert lines["good.mp4"]["outcome"] == "kept" and lines["good.mp4"]["clips"] >= 1
    expected = {
        "corrupt.mp4": "undecodable",
        "video_only.mp4": "no_audio_stream",
        "audio_only.mp4": "no_video_stream",
        "silent.mp4": "silent_audio",
        "short.mp4": "too_short",
        "nope.mkv": "not_found",
        "missing.mp4": "not_found",
    }
    for name, reason in expected.items():
        assert lines[name]["outcome"] == "rejected", name
        assert lines[name]["reason"] == reason, (name, lines[name])
    bad_row = [line for line in lines.values() if line["reason"] == "bad_manifest_row"]
    assert len(bad_row) == 1 and "m.csv:3" in bad_row[0]["input"]
    # every input is accounted for exactly once, and the report agrees with inputs.jsonl
    assert report["counts"]["inputs"]["total"] == len(lines) == 9
    assert sum(report["reasons"]["inputs"].values()) == report["counts"]["inputs"]["rejected"] == 8
    assert validate_release(root) == []


def test_container_audio_delay_is_measured_and_realigned(tmp_path: Path) -> None:
    clip = make_clip(seconds=6.0, seed=5)
    path = write_video_file(tmp_path / "late.mp4", clip, audio_start=0.4)
    (decoded,) = decode_clips(read_inputs([str(path)])[0][0], CurationConfig(clip_seconds=10.0))
    assert decoded.audio_late == pytest.approx(0.4, abs=0.03)

    root = tmp_path / "out"
    curate([str(path)], root, CurationConfig(clip_seconds=10.0, max_side=128, keep_flagged=True))
    (row,) = pq.read_table(root / layout.index_name(_only_split(root))).to_pylist()
    assert row["alignment.sync.offset"] == pytest.approx(0.4, abs=0.05)
    assert row["alignment.sync.realigned"] is True
    assert row["alignment.instance.passed"] is True


def test_same_inputs_give_byte_identical_shards(tmp_path: Path) -> None:
    inputs = [str(Path(__file__).resolve().parents[1] / "acav1m_hf" / "sample_data" / "manifest.csv")]
    config = CurationConfig(clip_seconds=4.0, max_side=96, shard_max_samples=2, keep_flagged=True)
    a, b = tmp_path / "a", tmp_path / "b"
    curate(inputs, a, config)
    curate(inputs, b, config)
    shards_a = sorted(p.relative_to(a) for p in (a / layout.DATA_DIR).glob("*.tar"))
    assert len(shards_a) >= 2, "shard_max_samples=2 must roll over"
    assert shards_a == sorted(p.relative_to(b) for p in (b / layout.DATA_DIR).glob("*.tar"))
    for shard in shards_a:
        assert (a / shard).read_bytes() == (b / shard).read_bytes(), shard
        with tarfile.open(a / shard) as tar:
            members = tar.getmembers()
        assert [m.name for m in members] == sorted(m.name for m in members)
        assert {(m.mtime, m.uid, m.gid) for m in members} == {(0, 0, 0)}


def test_clips_of_one_video_share_a_split_and_keys_are_unique(release: Path) -> None:
    split_of_video: dict[str, str] = {}
    keys = []
    for split, shards in layout.list_shards(release).items():
        for shard in shards:
            for key, members in iter_samples(shard):
                metadata = json.loads(members["json"])
                keys.append(key)
                assert split_of_video.setdefault(metadata["source"]["video_id"], split) == split
    assert len(keys) == len(set(keys)) >= 5
    assert all("." not in key for key in keys)


def test_rerun_is_a_no_op_and_a_different_plan_is_refused(tmp_path: Path) -> None:
    path = write_video_file(tmp_path / "a.mp4", make_clip(seconds=3.0, seed=6))
    root = tmp_path / "out"
    first = curate([str(path)], root, FAST)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert curate([str(path)], root, FAST) == first
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    with pytest.raises(CurationError, match="other inputs or settings"):
        curate([str(path)], root, CurationConfig(clip_seconds=2.0))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.tex").write_text("precious")
    with pytest.raises(CurationError, match="not an acav1m release"):
        curate([str(path)], tmp_path / "foreign", FAST)
    assert (tmp_path / "foreign" / "thesis.tex").read_text() == "precious"


def test_a_run_that_keeps_nothing_fails_and_says_why(tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="silent_audio"):
        curate([str(write_silent(tmp_path / "s.mp4"))], tmp_path / "out", FAST)
    assert json.loads((tmp_path / "out" / layout.REPORT).read_text())["counts"]["clips"]["kept"] == 0


def test_validate_names_the_shard_with_a_flipped_byte(release_copy: Path) -> None:
    assert validate_release(release_copy) == []
    shard = layout.list_shards(release_copy)["train"][0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01
    shard.write_bytes(bytes(data))
    errors = validate_release(release_copy)
    assert errors and any(shard.name in e and "sha256" in e for e in errors)


def test_validate_catches_an_index_that_disagrees_with_the_shards(release_copy: Path) -> None:
    index = release_copy / layout.index_name("train")
    table = pq.read_table(index)
    pq.write_table(table.slice(1), index)
    errors = validate_release(release_copy)
    assert any("missing from the index" in e for e in errors)


def _only_split(root: Path) -> str:
    (split,) = layout.list_shards(root)
    return split


def test_repeated_inputs_are_recorded_not_written_twice(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    clip = write_video_file(tmp_path / "a" / "clip.mp4", make_clip(seconds=3.0, seed=7))
    copy = tmp_path / "b" / "clip.mp4"
    copy.write_bytes(clip.read_bytes())  # the same bytes under the same name elsewhere: the same video id
    root = tmp_path / "out"
    report = curate([str(clip), str(clip), str(copy)], root, FAST)
    lines = [json.loads(line) for line in (root / layout.INPUTS).read_text().splitlines()]
    assert [line["reason"] for line in lines if line["outcome"] == "rejected"] == ["duplicate_input"] * 2
    assert report["counts"]["clips"]["kept"] == 1
    assert validate_release(root) == []


def test_a_folder_without_videos_or_only_missing_files_fails_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurationError, match="no_videos"):
        curate([str(tmp_path / "empty")], tmp_path / "out1", FAST)
    with pytest.raises(CurationError, match="not_found"):
        curate([str(tmp_path / "missing.mp4")], tmp_path / "out2", FAST)
    (line,) = [json.loads(x) for x in (tmp_path / "out2" / layout.INPUTS).read_text().splitlines()]
    assert line["reason"] == "not_found" and line["outcome"] == "rejected"


def test_a_window_past_the_end_says_so(tmp_path: Path) -> None:
    path = write_video_file(tmp_path / "a.mp4", make_clip(seconds=2.0, seed=8))
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,start\n{path},500\n")
    with pytest.raises(CurationError):
        curate([str(manifest)], tmp_path / "out", FAST)
    (line,) = [json.loads(x) for x in (tmp_path / "out" / layout.INPUTS).read_text().splitlines()]
    assert line["reason"] == "too_short" and "beyond the media's end" in line["detail"]


def test_validate_sees_a_key_written_twice(release_copy: Path) -> None:
    shard = layout.list_shards(release_copy)["train"][0]
    key, members = next(iter_samples(shard))
    doubled = shard.with_name("doubled.tar")
    with tarfile.open(shard) as source, tarfile.open(doubled, "w") as target:
        for _ in range(2):  # the same sample twice in a row: a reader grouping by key alone would merge them
            for extension, data in sorted(members.items()):
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size = len(data)
                target.addfile(info, io.BytesIO(data))
        for info in source:
            if not info.name.startswith(f"{key}."):
                target.addfile(info, source.extractfile(info))
    doubled.replace(shard)
    assert any(f"key {key} also in" in e for e in validate_release(release_copy))

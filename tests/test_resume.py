"""A run killed at any moment and restarted with the same command ends with the uninterrupted run's release.

The kills are real SIGKILLs of an ``acav1m curate`` subprocess at events,
through the pipeline's ``ACAV1M_TEST_CRASH`` hook (`curation.crash.crash_point`:
with a sample's part still open, after a unit's marker, between two moves of
finalize, after ``report.json``, midway through removing ``_work/``), never at
times, so that what is covered does not depend on the machine's speed: once
per point, and again and again on one folder. After every kill no partial
shard is visible; after the rerun every file of the release is byte-identical
to an uninterrupted run's, and ``_work/`` is gone.
"""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest

from acav1m_hf import release as layout
from curation.ledger import WORK_DIR
from curation.run import curate
from tests import curate_harness as harness
from tests.conftest import release_files
from tests.curate_harness import CONFIG, StopAfter, curate_cli


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Four inputs: four units, eight parts, so that every kill point is hit."""
    return harness.synthetic_inputs(tmp_path_factory, 4, first_seed=20)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harness.config_file(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    _, files = harness.uninterrupted_release(inputs, tmp_path_factory)
    assert sum(name.startswith("data/") for name in files) == 8
    return files


def assert_nothing_partial_is_visible(root: Path, reference: dict[str, bytes]) -> None:
    """Every shard under its final name is the finished one; every part under its name is a whole tar."""
    for shard in (root / layout.DATA_DIR).glob("*.tar"):
        assert shard.read_bytes() == reference[f"data/{shard.name}"], shard
    for part in (root / WORK_DIR).glob("[!.]*.tar"):
        with tarfile.open(part) as tar:
            assert tar.getmembers(), part  # reads to the end: a truncated tar raises


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["unit_done:2", "finalize_move:3", "finalize_report:1", "cleanup:2"])
def test_a_run_killed_at_a_point_and_rerun_gives_the_uninterrupted_release(
    crash: str, inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    killed = curate_cli(inputs, out, config_file, crash=crash)
    _, stderr = killed.communicate(timeout=120)
    assert killed.returncode == -9, stderr
    assert_nothing_partial_is_visible(out, reference)

    rerun = curate_cli(inputs, out, config_file)
    _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    if crash.startswith("unit_done"):
        assert "resuming: 2 of 4 units already done, 2 to process" in stderr  # finished units are not redone
    assert release_files(out) == reference
    assert not (out / WORK_DIR).exists()


KILL_CHAIN = (
    ("sample_written:2", None),  # unit 1: its first part finished, its second a .partial; no marker
    ("unit_done:2", None),  # units 1 and 2 done
    ("sample_written:3", "resuming: 2 of 4 units already done, 2 to process"),  # unit 3 done, unit 4 half written
    ("finalize_move:3", "resuming: 3 of 4 units already done, 1 to process"),  # three parts moved into data/
    ("finalize_report:1", None),
    ("cleanup:2", None),  # _work/ half removed
)
"""Successive runs on one folder, each killed at the next event: (ACAV1M_TEST_CRASH, what its start logs)."""


@pytest.mark.slow
def test_a_run_killed_again_and_again_at_events_ends_with_the_uninterrupted_release(
    inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for crash, resuming in KILL_CHAIN:
        process = curate_cli(inputs, out, config_file, crash=crash)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == -9, (crash, stderr)
        if resuming:
            assert resuming in stderr, (crash, stderr)
        if crash.startswith("sample_written"):
            assert list((out / WORK_DIR).glob(".*.partial")), f"{crash}: killed with no part open"
        assert_nothing_partial_is_visible(out, reference)
    final = curate_cli(inputs, out, config_file)
    _, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    assert release_files(out) == reference
    assert not (out / WORK_DIR).exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_part_of_a_finished_unit_is_detected_and_redone(
    damage: str, inputs: list[str], reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        curate(inputs, out, CONFIG, engine=StopAfter(2), log=lambda _: None)
    part = sorted((out / WORK_DIR).glob("[!.]*.tar"))[0]
    data = bytearray(part.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        part.write_bytes(bytes(data))
    elif damage == "truncate":
        part.write_bytes(bytes(data[: len(data) // 2]))
    else:
        part.unlink()
    messages: list[str] = []
    curate(inputs, out, CONFIG, log=messages.append)
    assert any("missing or corrupt parts" in m and part.name.split("-p")[0] in m for m in messages), messages
    assert any("resuming: 1 of 4 units already done" in m for m in messages), messages
    assert release_files(out) == reference


def test_the_cli_rerun_of_a_finished_release_changes_nothing(
    inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = curate_cli(inputs, out, config_file)
    assert first.communicate(timeout=120) and first.returncode == 0
    assert release_files(out) == reference  # the CLI, a subprocess, gives the in-process bytes
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    time.sleep(0.01)
    again = curate_cli(inputs, out, config_file)
    assert again.communicate(timeout=120) and again.returncode == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before

"""What a run may remove, one run per folder, a full disk and Ctrl-C (issue 9, points 2 and 6).

* ``--overwrite`` removes only the files that an earlier run's records name;
  a file of anyone else's, in the folder or in ``data/``, ``metadata/`` or
  ``_work/``, means a refusal that lists it, and nothing is removed.
* A second ``curate`` on a folder being written is refused, naming the
  writer's process; the first run ends as if alone.
* A full disk (a real ``ENOSPC``: the file being written is a link to
  ``/dev/full``) ends the run with one line naming the file, no ``.partial``
  left; the rerun gives the uninterrupted run's bytes.
* Ctrl-C (SIGINT at an exact point of the run, through the pipeline's
  ``crash_point`` hook) ends it with one line and exit 130, no traceback.

Every case runs the real pipeline on synthetic clips written here; the
subprocess cases run the ``acav1m`` command itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from acav1m_hf import release as layout
from acav1m_hf.lock import LOCK
from curation.config import CurationConfig
from curation.inputs import read_inputs
from curation.ledger import WORK_DIR, marker_name
from curation.plan import plan
from curation.run import CurationError, curate
from curation.writer import OutputFull
from tests import curate_harness as harness
from tests.conftest import release_files
from tests.curate_harness import CONFIG, REPO, StopAfter, curate_cli, quiet

OTHER = CurationConfig(clip_seconds=2.0, max_side=48, keep_flagged=True, inputs_per_unit=1, shard_max_samples=1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Three inputs: three units of two parts each."""
    return harness.synthetic_inputs(tmp_path_factory, 3, first_seed=40)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harness.config_file(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root, files = harness.uninterrupted_release(inputs, tmp_path_factory)
    assert not (root / LOCK).exists()  # the lock goes with the run
    assert sum(name.startswith("data/") for name in files) == 6
    return files


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def last_line(stderr: str) -> str:
    """The last line of stderr (the progress bar redraws with carriage returns before it)."""
    return stderr.strip().splitlines()[-1].split("\r")[-1]


def partials(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.partial"))


def next_unit(inputs: list[str], out: Path) -> str:
    """The first unit, in plan order, that has no marker yet: the one a resumed run processes first."""
    items, _ = read_inputs(inputs)
    return next(u.name for u in plan(items, CONFIG) if not (out / marker_name(u)).exists())


# --------------------------------------------------------------------------- point 2: --overwrite


USER_FILES = ("notes.txt", "data/mine.txt", "metadata/labels.csv", f"{WORK_DIR}/todo.txt")


def test_overwrite_refuses_to_remove_files_that_curate_did_not_write(
    inputs: list[str], reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    curate(inputs, out, CONFIG, log=quiet)
    for name in USER_FILES:
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text(f"precious {name}")
    before = release_files(out)
    with pytest.raises(CurationError, match="--overwrite removes only what acav1m curate wrote") as refused:
        curate(inputs, out, OTHER, overwrite=True, log=quiet)
    for name in USER_FILES:
        assert name in str(refused.value)
    assert release_files(out) == before  # nothing was removed, the release's files neither

    for name in USER_FILES:
        (out / name).unlink()
    curate(inputs, out, CONFIG, overwrite=True, log=quiet)  # only the tool's files: the overwrite goes ahead
    assert release_files(out) == reference


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["sample_written:2", "finalize_move:3"])
def test_overwrite_of_an_interrupted_run_removes_its_parts_and_records_only(
    crash: str, inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    """Killed mid-unit (a part without a marker, an open ``.partial``) or mid-finalize (shards moved, no report)."""
    out = tmp_path / "out"
    code, stderr = finish(curate_cli(inputs, out, config_file, crash=crash))
    assert code == -signal.SIGKILL, stderr
    if crash.startswith("sample_written"):
        assert partials(out) and not list((out / WORK_DIR).glob("*.done.json"))
    else:
        assert list((out / layout.DATA_DIR).glob("*.tar")) and not (out / layout.REPORT).exists()
    (out / WORK_DIR / "todo.txt").write_text("precious")
    with pytest.raises(CurationError, match=rf"1 other file\(s\) are here: {WORK_DIR}/todo.txt;"):
        curate(inputs, out, CONFIG, overwrite=True, log=quiet)
    assert (out / WORK_DIR / "todo.txt").read_text() == "precious"

    (out / WORK_DIR / "todo.txt").unlink()
    curate(inputs, out, CONFIG, overwrite=True, log=quiet)
    assert release_files(out) == reference


def test_a_folder_that_is_not_a_release_is_refused_without_suggesting_overwrite(
    inputs: list[str], tmp_path: Path
) -> None:
    folder = tmp_path / "thesis"
    (folder / WORK_DIR).mkdir(parents=True)
    (folder / WORK_DIR / "draft.tex").write_text("precious")  # only under _work/: still not the tool's
    (folder / layout.REPORT).write_text('{"title": "my report"}')  # a report.json, but not an acav1m one
    (folder / layout.CARD).write_text("# my project")
    mine = release_files(folder)
    for overwrite in (False, True):
        with pytest.raises(CurationError, match="is not an acav1m release") as refused:
            curate(inputs, folder, CONFIG, overwrite=overwrite, log=quiet)
        assert all(name in str(refused.value) for name in mine)
        assert "--overwrite" not in str(refused.value)
    assert release_files(folder) == mine
    assert not (folder / LOCK).exists()


@pytest.mark.slow
def test_a_user_file_in_work_survives_the_resumed_run(
    inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, stderr = finish(curate_cli(inputs, out, config_file, crash="unit_done:2"))
    assert code == -signal.SIGKILL, stderr
    (out / WORK_DIR / "todo.txt").write_text("precious")
    curate(inputs, out, CONFIG, log=quiet)
    files = release_files(out)
    assert files.pop(f"{WORK_DIR}/todo.txt") == b"precious"
    assert files == reference  # the run's own records and parts are gone, its release is whole


# --------------------------------------------------------------------------- point 6: lock, full disk, Ctrl-C


@pytest.mark.slow
def test_a_second_run_on_a_folder_being_written_is_refused_and_the_first_ends_intact(
    inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = curate_cli(inputs, out, config_file, crash="unit_done:1:STOP")  # stops itself, holding the lock
    _, status = os.waitpid(first.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
    try:
        code, stderr = finish(curate_cli(inputs, out, config_file))
        assert code == 2
        assert last_line(stderr) == f"acav1m curate: {out} is being written by process {first.pid}; wait for it to end"
        assert "Traceback" not in stderr
    finally:
        os.kill(first.pid, signal.SIGCONT)
    code, stderr = finish(first)
    assert code == 0, stderr
    assert release_files(out) == reference
    assert not (out / LOCK).exists()


@pytest.mark.slow
def test_a_full_disk_while_writing_a_part_stops_with_one_line_and_the_rerun_is_byte_identical(
    inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        curate(inputs, out, CONFIG, engine=StopAfter(1), log=quiet)
    part = f"{WORK_DIR}/{next_unit(inputs, out)}-p000.tar"
    (out / WORK_DIR / f".{part.rsplit('/', 1)[1]}.partial").symlink_to("/dev/full")  # its writes get ENOSPC

    code, stderr = finish(curate_cli(inputs, out, config_file))
    assert code == 2
    assert last_line(stderr).startswith(f"acav1m curate: {out}/{part}: no space left on device;")
    assert "Traceback" not in stderr
    assert partials(out) == []  # the link too: "space is freed"
    assert not list((out / WORK_DIR).glob("*.failed.json"))  # a full disk is not the unit's failure

    code, stderr = finish(curate_cli(inputs, out, config_file))
    assert code == 0, stderr
    assert release_files(out) == reference


def test_a_full_disk_while_finalize_writes_the_index_names_it_and_leaves_no_partial(
    inputs: list[str], reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        curate(inputs, out, CONFIG, engine=StopAfter(3), log=quiet)  # every unit done, finalize not started
    index = layout.index_name("train")
    (out / layout.METADATA_DIR).mkdir()
    (out / layout.METADATA_DIR / ".train.parquet.partial").symlink_to("/dev/full")
    with pytest.raises(OutputFull, match=f"{out}/{index}: no space left on device"):
        curate(inputs, out, CONFIG, log=quiet)
    assert partials(out) == []
    curate(inputs, out, CONFIG, log=quiet)
    assert release_files(out) == reference


@pytest.mark.slow
def test_ctrl_c_prints_one_line_exits_130_and_leaves_nothing_partial(
    inputs: list[str], config_file: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, stderr = finish(curate_cli(inputs, out, config_file, crash="sample_written:3:INT"))  # a part is open
    assert code == 130
    assert last_line(stderr) == "acav1m curate: interrupted; rerun the same command to resume"
    assert "Traceback" not in stderr
    assert partials(out) == []
    assert not (out / LOCK).exists()

    code, stderr = finish(curate_cli(inputs, out, config_file))
    assert code == 0, stderr
    assert "resuming: 1 of 3 units already done" in stderr
    assert release_files(out) == reference


def test_a_full_disk_on_a_ray_worker_stops_the_run_instead_of_failing_the_unit(
    inputs: list[str], tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    from curation.engines import RayEngine

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        curate(inputs, out, CONFIG, engine=StopAfter(1), log=quiet)
    part = f"{WORK_DIR}/{next_unit(inputs, out)}-p000.tar"
    (out / WORK_DIR / f".{part.rsplit('/', 1)[1]}.partial").symlink_to("/dev/full")
    ray.init(
        num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}}
    )
    try:
        with pytest.raises(OutputFull, match=f"{out}/{part}: no space left on device"):
            curate(inputs, out, CONFIG, engine=RayEngine(workers=1, progress=False), log=quiet)
    finally:
        ray.shutdown()
    assert partials(out) == []
    assert not list((out / WORK_DIR).glob("*.failed.json"))

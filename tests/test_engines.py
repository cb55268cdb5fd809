"""Engines schedule, stages compute: local and Ray give the same bytes; failures stay local; memory is bounded.

The Ray tests share one module-scoped Ray session (``num_cpus=2``, and one
*logical* GPU so that the GPU-actor path is scheduled on this CPU-only
machine: the cpu profile's aligner computes on the CPU whatever the device).
They are skipped when Ray is not installed (``pip install 'acav1m[ray]'``).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from acav1m_hf import release as layout
from curation.config import CurationConfig
from curation.engines import LocalEngine, RayEngine, make_engine
from curation.ledger import FINALIZED
from curation.profiles import Profile, build_profile
from curation.run import CurationError, UnitJob, curate
from curation.signal_aligner import SignalAligner
from curation.writer import Store
from tests.conftest import needs, release_files
from tests.synthetic import make_clip, write_silent, write_video_file

REPO = Path(__file__).resolve().parents[1]
CONFIG = CurationConfig(clip_seconds=2.0, max_side=64, keep_flagged=True, inputs_per_unit=1, shard_max_samples=2)


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("inputs")
    for seed in range(4):
        write_video_file(folder / f"clip{seed}.mp4", make_clip(seconds=4.5, seed=seed + 40))
    return [str(folder)]


@pytest.fixture(scope="module")
def local_release(inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("local") / "out"
    curate(inputs, root, CONFIG, engine=LocalEngine(progress=False), log=quiet)
    return release_files(root)


@pytest.fixture(scope="module")
def ray_session():
    needs("ray")
    import ray

    ray.init(
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},  # workers import this module's profile factories
    )
    yield ray
    ray.shutdown()


# --------------------------------------------------------------------------- injected stage failures


class FlakyAligner:
    """The cpu aligner, except that it raises (like a GPU out of memory) on the first clip of one input."""

    def __init__(self, inner, path_suffix: str) -> None:
        self.inner, self.path_suffix, self.name = inner, path_suffix, inner.name

    def analyse(self, clip, caption):
        if clip.item.path.endswith(self.path_suffix) and clip.index == 0:
            raise RuntimeError("CUDA out of memory (injected)")
        return self.inner.analyse(clip, caption)


class BrokenAligner(FlakyAligner):
    """Returns embeddings that are no array for one input: a bug that raises outside the model stages (when the
    sample is encoded), so it fails the whole unit."""

    def analyse(self, clip, caption):
        analysis = self.inner.analyse(clip, caption)
        if clip.item.path.endswith(self.path_suffix):
            analysis.embeddings = object()
        return analysis


def flaky_profile(config: CurationConfig) -> Profile:
    """The cpu profile (its text models too: a retried unit must match the others) with the flaky aligner."""
    profile = build_profile(config)
    return replace(profile, aligner=FlakyAligner(profile.aligner, "clip2.mp4"))


def broken_profile(config: CurationConfig) -> Profile:
    profile = build_profile(config)
    return replace(profile, aligner=BrokenAligner(profile.aligner, "clip1.mp4"))


def test_a_model_failure_on_one_clip_is_recorded_on_that_clip_and_retried_on_request(
    inputs: list[str], local_release: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    report = curate(inputs, out, CONFIG, profile_factory=flaky_profile, log=quiet)
    assert report["retryable"] == {"inputs": 1, "clips": 1}
    assert report["counts"]["clips"]["kept"] == 8  # the clip went on (kept flagged, with null scores)
    rows = [r for split in layout.list_shards(out) for r in pq.read_table(out / layout.index_name(split)).to_pylist()]
    failed = [r for r in rows if r["source.path"].endswith("clip2.mp4") and r["source.start"] == 0]
    assert len(failed) == 1
    assert failed[0]["alignment.instance.score"] is None
    assert failed[0]["alignment.instance.reason"] == "aligner failed: RuntimeError: CUDA out of memory (injected)"
    others = [r for r in rows if r is not failed[0]]
    assert all(r["alignment.instance.score"] is not None for r in others)
    lines = [json.loads(line) for line in (out / layout.INPUTS).read_text().splitlines()]
    assert [line["retryable"] for line in lines].count(True) == 1
    assert (out / FINALIZED).exists(), "a release with transient failures keeps _work/ for --retry-failed"

    assert curate(inputs, out, CONFIG, log=quiet) == report  # without the flag: nothing is redone
    messages: list[str] = []
    retried = curate(inputs, out, CONFIG, retry_failed=True, log=messages.append)
    assert "retrying 1 unit(s) with failures" in messages[0]
    assert retried["retryable"] == {"inputs": 0, "clips": 0}
    assert release_files(out) == local_release  # now exactly what a run without the failure writes


def test_a_failing_unit_is_retried_a_bounded_number_of_times_then_reported(
    inputs: list[str], local_release: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: Counter[str] = Counter()
    process = UnitJob.process

    def counting(self, unit, analyser=None):
        attempts[unit.name] += 1
        return process(self, unit, analyser)

    monkeypatch.setattr(UnitJob, "process", counting)
    out = tmp_path / "out"
    report = curate(
        inputs,
        out,
        CONFIG,
        engine=LocalEngine(max_attempts=3, progress=False),
        profile_factory=broken_profile,
        log=quiet,
    )
    (failure,) = report["failed_units"]
    assert attempts[failure["unit"]] == 3 and failure["attempts"] == 3
    assert sorted(attempts.values()) == [1, 1, 1, 3]
    assert failure["error"].startswith("TypeError")
    lines = [json.loads(line) for line in (out / layout.INPUTS).read_text().splitlines()]
    (line,) = [line for line in lines if line["reason"] == "unit_failed"]
    assert line["input"].endswith("clip1.mp4") and failure["unit"] in line["detail"]
    assert report["counts"]["inputs"] == {"total": 4, "kept": 3, "rejected": 1}
    assert not list((out / layout.DATA_DIR).glob(".*")), "no partial shard of the failed unit"

    monkeypatch.setattr(UnitJob, "process", process)
    curate(inputs, out, CONFIG, retry_failed=True, log=quiet)
    assert release_files(out) == local_release


def test_a_run_whose_every_unit_fails_exits_non_zero_and_says_why(inputs: list[str], tmp_path: Path) -> None:
    def always_broken(config: CurationConfig) -> Profile:
        return Profile("cpu", aligner=BrokenAligner(SignalAligner(), ".mp4"))

    with pytest.raises(CurationError, match="no clip was kept.*unit_failed.*4 unit.s. failed"):
        curate(
            inputs,
            tmp_path / "out",
            CONFIG,
            engine=LocalEngine(max_attempts=2, progress=False),
            profile_factory=always_broken,
            log=quiet,
        )


class FlakyFileSystem(MemoryFileSystem):
    """The memory filesystem under ``flaky://``, whose reads fail with a connection reset while ``down``."""

    protocol = "flaky"
    down = True

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.removeprefix("flaky://"))

    def _open(self, path, mode="rb", **kwargs):
        if FlakyFileSystem.down and "r" in mode:
            raise ConnectionResetError("connection reset by peer (injected)")
        return super()._open(path, mode, **kwargs)


def test_an_input_lost_to_an_io_error_is_retryable_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    monkeypatch.setattr(FlakyFileSystem, "down", True)
    folder = f"acav1m-flaky-{uuid.uuid4().hex}"
    video = write_video_file(tmp_path / "remote.mp4", make_clip(seconds=3.0, seed=7))
    memory = fsspec.filesystem("memory")
    memory.pipe_file(f"/{folder}/remote.mp4", video.read_bytes())
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"url,video_id\nflaky://{folder}/remote.mp4,remote\n{video},local\n")
    out = tmp_path / "out"
    try:
        report = curate([str(manifest)], out, CONFIG, log=quiet)
        lines = {line["video_id"]: line for line in map(json.loads, (out / layout.INPUTS).read_text().splitlines())}
        assert lines["remote"]["reason"] == "undecodable" and lines["remote"]["retryable"] is True
        assert "ConnectionResetError" in lines["remote"]["detail"]
        assert lines["local"]["retryable"] is False
        assert report["retryable"] == {"inputs": 1, "clips": 0}

        monkeypatch.setattr(FlakyFileSystem, "down", False)  # the network is back
        report = curate([str(manifest)], out, CONFIG, retry_failed=True, log=quiet)
        assert report["counts"]["inputs"] == {"total": 2, "kept": 2, "rejected": 0}
        assert report["retryable"] == {"inputs": 0, "clips": 0}
        assert not (out / "_work").exists()
    finally:
        memory.rm(f"/{folder}", recursive=True)


def test_the_cli_exits_non_zero_when_nothing_is_kept(tmp_path: Path) -> None:
    silent = write_silent(tmp_path / "silent.mp4")
    command = [sys.executable, "-m", "curation.cli", "curate", str(silent), "-o", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert "no clip was kept from 1 input(s)" in done.stderr and "silent_audio" in done.stderr


# --------------------------------------------------------------------------- outputs anywhere fsspec writes


def test_a_memory_filesystem_release_has_the_local_release_bytes(
    inputs: list[str], local_release: dict[str, bytes]
) -> None:
    url = f"memory://acav1m-test-{uuid.uuid4().hex}/out"
    fs, root = fsspec.core.url_to_fs(url)
    try:
        report = curate(inputs, url, CONFIG, log=quiet)
        found = {path[len(root) + 1 :]: fs.cat_file(path) for path in sorted(fs.find(root))}
        assert found == local_release
        assert curate(inputs, url, CONFIG, log=quiet) == report  # a rerun finds it complete
    finally:
        fs.rm(root.rsplit("/", 1)[0], recursive=True)


def test_store_writes_appear_whole_or_not_at_all() -> None:
    store = Store(f"memory://acav1m-test-{uuid.uuid4().hex}")
    with pytest.raises(RuntimeError), store.open_atomic("data/a.tar") as f:
        f.write(b"half")
        assert not store.exists("data/a.tar")
        raise RuntimeError("killed")
    assert not store.exists("data/a.tar")
    store.write_atomic("data/a.tar", b"whole")
    assert store.read_bytes("data/a.tar") == b"whole"
    assert store.listdir("data") == ["a.tar"]  # the abandoned temporary was replaced, then moved
    store.remove_tree("")


def test_engine_options_are_checked() -> None:
    assert isinstance(make_engine("local"), LocalEngine)
    with pytest.raises(ValueError, match="--engine ray"):
        make_engine("local", workers=4)
    with pytest.raises(ValueError, match="needs --engine ray"):
        make_engine("local", address="auto")
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("spark")


# --------------------------------------------------------------------------- Ray


@pytest.mark.slow
def test_ray_and_local_give_byte_identical_releases(
    ray_session, inputs: list[str], local_release: dict[str, bytes], tmp_path: Path
) -> None:
    root = tmp_path / "out"
    curate(inputs, root, CONFIG, engine=RayEngine(workers=2, progress=False), log=quiet)
    assert release_files(root) == local_release


@pytest.mark.slow
def test_ray_runs_model_stages_in_gpu_actors_with_the_same_bytes(
    ray_session, inputs: list[str], tmp_path: Path
) -> None:
    config = replace(CONFIG, device="cuda")  # the cpu profile computes on the CPU; the device routes it to actors
    curate(inputs, tmp_path / "local", config, engine=LocalEngine(progress=False), log=quiet)
    engine = RayEngine(workers=2, gpus_per_actor=0.5, progress=False)
    curate(inputs, tmp_path / "ray", config, engine=engine, log=quiet)
    assert engine.used_actors == 2  # two actors share the one (logical) GPU
    assert release_files(tmp_path / "ray") == release_files(tmp_path / "local")


@pytest.mark.slow
def test_ray_retries_and_reports_a_failing_unit_like_the_local_engine(
    ray_session, inputs: list[str], tmp_path: Path
) -> None:
    for name, engine in (
        ("local", LocalEngine(max_attempts=2, progress=False)),
        ("ray", RayEngine(workers=2, max_attempts=2, progress=False)),
    ):
        curate(inputs, tmp_path / name, CONFIG, engine=engine, profile_factory=broken_profile, log=quiet)
    assert release_files(tmp_path / "ray") == release_files(tmp_path / "local")
    report = json.loads((tmp_path / "ray" / layout.REPORT).read_text())
    assert [f["attempts"] for f in report["failed_units"]] == [2]


def test_ray_refuses_an_output_it_cannot_share() -> None:
    needs("ray")
    job = UnitJob(CONFIG, Store("memory://acav1m-test-ray"))
    with pytest.raises(ValueError, match="memory://"):
        RayEngine().run([], job)


# --------------------------------------------------------------------------- memory


MEASURE = """
import resource, sys
from curation.config import CurationConfig
from curation.run import curate
config = CurationConfig(clip_seconds=1.0, max_side=48, keep_flagged=True, inputs_per_unit=16, shard_max_samples=100)
report = curate([sys.argv[1]], sys.argv[2], config, log=lambda _: None)
print(report["counts"]["inputs"]["total"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_mib(manifest: Path, out: Path) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(manifest), str(out)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    inputs, kib = done.stdout.split()
    return int(inputs), int(kib) / 1024


@pytest.mark.slow
def test_memory_is_bounded_by_batch_and_shard_size_not_by_the_number_of_inputs(tmp_path: Path) -> None:
    """3000 inputs (a tenth of them kept) peak within a few MiB of 300: nothing holds per-input media."""
    loud = write_video_file(tmp_path / "loud.mp4", make_clip(seconds=1.2, seed=1, size=(32, 48), fps=10))
    clip = make_clip(seconds=1.2, seed=2, size=(32, 48), fps=10)
    silent = write_video_file(tmp_path / "silent.mp4", replace(clip, audio=np.zeros_like(clip.audio)))
    peaks = {}
    for n in (300, 3000):
        manifest = tmp_path / f"m{n}.csv"
        with open(manifest, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "video_id", "start", "end"])
            for i in range(n):
                writer.writerow([(loud if i % 10 == 0 else silent).name, f"v{i:06d}", 0, 1.1])
        total, peaks[n] = _peak_rss_mib(manifest, tmp_path / f"out{n}")
        assert total == n
    print(f"peak RSS: {peaks[300]:.1f} MiB for 300 inputs, {peaks[3000]:.1f} MiB for 3000")
    assert peaks[3000] - peaks[300] < 32, peaks

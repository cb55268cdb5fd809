"""A release curated from ACAV100M-shaped rows fetched from a local server: the same bytes whatever happens on the way.

Killed mid-fetch (SIGKILL at an event, `curation.crash.crash_point`: a segment downloaded and not yet in the cache)
and rerun, the run ends with the uninterrupted run's release, and the server's request log shows that no segment
that was in the cache was asked for again; the Ray engine, whose workers fetch in their own processes, gives the
local engine's release.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation.config import CurationConfig
from curation.engines import RayEngine
from curation.run import curate
from curation.segments import FetchOptions
from tests.conftest import SAMPLE_DATA, SPEECH_CLIP, needs, release_files
from tests.media_server import MediaServer, serve_copies

REPO = Path(__file__).resolve().parents[1]
CONFIG = CurationConfig(clip_seconds=2.0, max_side=64, keep_flagged=True, inputs_per_unit=2, shard_max_samples=2)
"""At most two inputs per unit, a split's inputs in their own units: four units here, so that the kill (at the fourth
segment's download) falls after finished units."""
SOURCES = {f"v{k}": (SAMPLE_DATA / "techslides_small.mp4", SPEECH_CLIP)[k % 2] for k in range(6)}
ROWS = [(video, 1.0 + 0.5 * (k % 3), 3.0 + 0.5 * (k % 3)) for k, video in enumerate(SOURCES)]
"""One 2-s window per video (each row its own file, so that the request log counts each segment's fetches)."""


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> MediaServer:
    running = serve_copies(tmp_path_factory.mktemp("www"), {f"{video}.mp4": path for video, path in SOURCES.items()})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "acav100m.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([("videoID", "start", "end"), *ROWS])
    return path


def _template(server: MediaServer) -> str:
    return f"{server.url}/{{videoID}}.mp4"


def _options(cache: Path) -> FetchOptions:
    return FetchOptions(cache_dir=str(cache), interval=0, backoff=0.01, socket_timeout=10.0)


@pytest.fixture(scope="module")
def reference(server: MediaServer, index: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The release of an uninterrupted run, in this process, with its own cache."""
    root = tmp_path_factory.mktemp("reference")
    report = curate(
        [str(index)], root / "out", CONFIG, log=quiet, fetch=_options(root / "cache"), url_template=_template(server)
    )
    assert report["counts"]["inputs"]["kept"] == len(ROWS)
    return release_files(root / "out")


def _curate_cli(server: MediaServer, index: Path, root: Path, crash: str | None = None) -> subprocess.Popen:
    config = root / "config.json"
    config.write_text(json.dumps({**CONFIG.to_dict(), "split_fractions": list(CONFIG.split_fractions)}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ACAV1M_TEST_CRASH", None)
    env.update({"ACAV1M_TEST_CRASH": crash} if crash else {})
    command = [sys.executable, "-m", "curation.cli", "curate", str(index), "-o", str(root / "out")]
    command += ["--config", str(config), "--url-template", _template(server), "--cache-dir", str(root / "cache")]
    command += ["--fetch-interval", "0", "--fetch-concurrency", "1"]  # one fetch at a time: the 4th is the 4th row's
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cached_urls(cache: Path) -> set[str]:
    return {json.loads(record.read_text())["url"] for record in cache.glob("*.json")}


@pytest.mark.slow
def test_a_run_killed_mid_fetch_and_rerun_fetches_no_finished_segment_again_and_gives_the_same_release(
    server: MediaServer, index: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    killed = _curate_cli(server, index, tmp_path, crash="segment_downloaded:4")
    _, stderr = killed.communicate(timeout=300)
    assert killed.returncode == -9, stderr
    finished = _cached_urls(tmp_path / "cache")
    assert len(finished) == 3  # three segments in the cache; the fourth downloaded into its staging folder only
    assert len(list((tmp_path / "cache" / "tmp").iterdir())) == 1

    before = dict(server.counts)
    rerun = _curate_cli(server, index, tmp_path)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert "resuming: 2 of 4 units already done, 2 to process" in stderr
    for video in SOURCES:
        url, path = f"{server.url}/{video}.mp4", f"/{video}.mp4"
        if url in finished:
            assert server.counts[path] == before.get(path, 0), f"{video}: finished, yet fetched again"
        else:
            assert server.counts[path] > before.get(path, 0), f"{video}: never fetched"
    assert release_files(tmp_path / "out") == reference
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []  # the killed fetch's staging folder is gone

    before = dict(server.counts)
    again = _curate_cli(server, index, tmp_path)
    assert again.communicate(timeout=300) and again.returncode == 0
    assert server.counts == before  # a finished release: nothing is fetched
    assert release_files(tmp_path / "out") == reference


@pytest.mark.slow
def test_the_ray_engine_fetching_in_its_workers_gives_the_local_engines_release(
    server: MediaServer, index: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    needs("ray")
    import ray

    before = dict(server.counts)
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}}
    )
    try:
        engine = RayEngine(workers=2, progress=False)
        fetch, template = _options(tmp_path / "cache"), _template(server)
        curate([str(index)], tmp_path / "out", CONFIG, engine=engine, log=quiet, fetch=fetch, url_template=template)
    finally:
        ray.shutdown()
    assert all(server.counts[f"/{video}.mp4"] > before.get(f"/{video}.mp4", 0) for video in SOURCES)  # fetched anew
    assert release_files(tmp_path / "out") == reference

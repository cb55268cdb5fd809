"""Per-host limits across processes (`curation.hosts`): two processes fetching into one cache share a host's slots.

The server counts the fetches it serves at once (by path: one fetch's requests are for one file); the two processes
start fetching together (a barrier, not a sleep), each wanting more fetches at once than the limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation.cli import main
from curation.hosts import HostLimits
from tests.conftest import SAMPLE_DATA
from tests.media_server import serve_copies

REPO = Path(__file__).resolve().parents[1]
CLIP = SAMPLE_DATA / "techslides_small.mp4"


@pytest.mark.slow
def test_two_processes_fetching_into_one_cache_never_exceed_the_hosts_limit_together(tmp_path: Path) -> None:
    names = {side: [f"{side}{k}.mp4" for k in range(4)] for side in "ab"}
    server = serve_copies(tmp_path / "www", {name: CLIP for side in names.values() for name in side})
    server.hold = 0.2  # every answer waits: the fetches of both processes overlap in time
    (tmp_path / "ready").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.fetch_child", "--cache", str(tmp_path / "cache")]
                + ["--ready", str(tmp_path / "ready"), "--name", side, "--parties", "2"]
                + ["--per-host", "2", "--concurrency", "3"]  # 6 fetches wanted at once, 2 allowed
                + [f"{server.url}/{name}" for name in files],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for side, files in names.items()
        ]
        for child in children:
            _, stderr = child.communicate(timeout=300)
            assert child.returncode == 0, stderr
    finally:
        server.stop()
    assert all(server.counts[f"/{name}"] > 0 for side in names.values() for name in side)
    assert server.most_at_once == 2  # the limit was reached, and never passed, by the two processes together
    port = server.url.rsplit(":", 1)[1]
    assert [p.name for p in (tmp_path / "cache" / "hosts").iterdir()] == [f"127.0.0.1_{port}"]  # host:port, named


def test_the_interval_between_starts_to_a_host_holds_across_limiters_of_one_folder(tmp_path: Path) -> None:
    waits: list[float] = []
    first, second = (HostLimits(tmp_path, per_host=4, interval=5.0, sleep=waits.append) for _ in range(2))
    with first.turn("example.org"):
        pass
    with second.turn("example.org"):  # as another process would: its own limiter, the same folder
        pass
    with second.turn("other.example.org"):  # another host: no wait
        pass
    assert len(waits) == 1 and 4.0 < waits[0] <= 5.0


def test_a_limit_below_one_is_refused_before_anything_is_fetched(tmp_path: Path, capsys) -> None:
    with pytest.raises(ValueError, match="per_host must be at least 1, got 0"):
        HostLimits(tmp_path, per_host=0, interval=0)
    index = tmp_path / "index.csv"
    index.write_text("videoID,start,end\nabc,0,10\n")
    assert main(["fetch", str(index), "-o", str(tmp_path / "cache"), "--per-host", "0"]) != 0
    assert "fetch option per_host must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()

"""Smoke test of the benchmarks: every script runs on tiny inputs and prints its figures and ratios.

No timing is asserted: the figures of a tiny run on a shared machine mean
nothing. What is checked is that each script runs end to end, prints the
lines BENCHMARKS.md is made of, and saves its JSON for ``bench/run_all.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["--size-gb", "0.0005", "--clip-seconds", "1", "--samples-per-shard", "2"]

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, out: Path) -> str:
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bench output folder holding the tiny release every script reuses."""
    folder = tmp_path_factory.mktemp("bench")
    stdout = _run("gen_shards.py", *TINY, "--workers", "1", out=folder)
    assert "release:" in stdout and "clips:" in stdout
    return folder


def _saved(out: Path, bench: str) -> dict:
    data = json.loads((out / f"{bench}.json").read_text())
    assert data["machine"]["nproc"] >= 1 and data["machine"]["cpu"]
    return data


def test_gen_shards_makes_a_valid_release(out: Path) -> None:
    from acav1m_hf.validate import validate_release
    from bench.gen_shards import MARKER, release_dir

    root = release_dir(out, 0.0005, 1.0)
    info = json.loads((root / MARKER).read_text())
    assert info["clips"] >= 2 and info["shards"] >= 1
    assert validate_release(root) == []


def test_read_bench(out: Path) -> None:
    stdout = _run(
        "read_bench.py",
        *TINY,
        "--rounds",
        "1",
        "--decoded-rounds",
        "1",
        "--decoded-clips",
        "2",
        "--decoded-per-shard",
        "1",
        out=out,
    )
    for text in (
        "== read: figures ==",
        "raw-tar-stream",
        "hf-stream-raw",
        "hf-dataset-rows",
        "acav1m stream, undecoded / raw tar read (limit)",
        "acav1m stream, decoded / decode-only limit",
        "DataLoader, decoded: 2 workers / 1 worker",
    ):
        assert text in stdout, text
    data = _saved(out, "read")
    assert {r["case"] for r in data["rows"]} >= {"raw-tar-stream", "wds", "stream-raw", "stream-decoded", "dl2-decoded"}
    assert all(r["samples"] > 0 for r in data["rows"])


def test_memory_bench(out: Path) -> None:
    stdout = _run("memory_bench.py", *TINY, "--shards", "2", "--decoded-per-shard", "1", out=out)
    assert "peak RSS raw" in stdout and "peak RSS decoded" in stdout
    assert all(r["peak_mb"] > 0 for r in _saved(out, "memory")["rows"])


def test_write_bench(out: Path) -> None:
    stdout = _run("write_bench.py", *TINY, "--write-mb", "0.2", "--per-shard", "2", "--rounds", "1", out=out)
    assert "ShardWriter / tarfile alone (MB/s)" in stdout
    assert {r["case"] for r in _saved(out, "write")["rows"]} == {
        "shardwriter",
        "tarfile",
        "tarfile-fsync",
        "wds-tarwriter",
        "shardwriter-overlapped",
    }


def test_curation_bench(out: Path) -> None:
    stdout = _run(
        "curation_bench.py",
        "--synthetic",
        "1",
        "--input-seconds",
        "1",
        "--clip-seconds",
        "1",
        "--no-bundled",
        "--rounds",
        "1",
        out=out,
    )
    assert "curate (CPU profile) / decoding the inputs alone (clips/s)" in stdout
    assert "decode + signal aligner / decoding alone (clips/s)" in stdout
    for depth in (0, 2):  # both curate cases measured how long the model side waited for decoded batches
        assert f"share of the unit loop (decode_ahead {depth}): 0." in stdout
    assert all(r["samples"] > 0 for r in _saved(out, "curation")["rows"])


def test_fetch_bench(out: Path) -> None:
    tiny = ["--videos", "2", "--source-seconds", "4", "--clip-seconds", "2", "--rounds", "1", "--concurrency", "1,2"]
    stdout = _run("fetch_bench.py", *tiny, out=out)
    assert "curate, 2 fetches at once / read from disk (clips/s)" in stdout
    assert "fetch only, 2 at once / curate from disk" in stdout
    rows = {r["case"]: r for r in _saved(out, "fetch")["rows"]}
    assert set(rows) == {"disk", "fetch-1", "fetch-2", "fetch-only-2"}
    assert all(row["samples"] == 2 for row in rows.values())  # every window fetched and curated, in every case


def test_croissant_bench(out: Path) -> None:
    from bench.gen_shards import release_dir

    stdout = _run("croissant_bench.py", "--rounds", "1", "--release", str(release_dir(out, 0.0005, 1.0)), out=out)
    assert "release: validate-cli" in stdout and "mlcroissant load, cold" in stdout
    assert any(r["case"] == "release: load-cold" and r["samples"] > 0 for r in _saved(out, "croissant")["rows"])


def test_run_all_writes_a_summary(out: Path) -> None:
    _run("run_all.py", "--quick", "--only", "gen,write", "--no-profile", out=out)
    text = (out / "summary.md").read_text()
    assert "## write" in text and "machine:" in text


def test_profile_summary(tmp_path: Path) -> None:
    from bench.common import format_profile, summarize_profile

    raw = tmp_path / "raw.txt"
    raw.write_text(
        "main (a.py:1);work (a.py:5);inner (b.py:2) 6\n"
        "main (a.py:1);work (a.py:6);0x7f00 (libswscale-88e9.so.9.5) 3\n"
        "main (a.py:1);idle (a.py:9) 1\n"
    )
    summary = summarize_profile(raw)
    assert summary["samples"] == 10
    assert dict(summary["self"])["inner (b.py)"] == 60.0
    assert dict(summary["self"])["[libswscale]"] == 30.0
    focused = summarize_profile(raw, focus="work")
    assert focused["samples"] == 9 and dict(focused["inclusive"])["work (a.py)"] == 100.0
    assert "self time" in format_profile(summary, "x")

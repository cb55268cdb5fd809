"""Every ``acav1m`` command (curate, validate, croissant, info, demo, site, push, download), run from the command line on a real release, with its output and effect asserted.

Commands run through `curation.cli.main` (the console script ``acav1m``) with
an argument list (the parser and handlers a shell reaches), and ``info`` once
more as a subprocess of the release commands alone (``python -m acav1m_hf.cli``). ``push`` and ``download`` run against
autospec mocks of huggingface_hub (the ``hub`` fixture): no network.
``curate`` is also run as a subprocess by tests/test_resume.py and
tests/test_engines.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import call

import datasets
import pyarrow.parquet as pq
import pytest

from acav1m_hf import release as layout
from acav1m_hf.hub import RELEASE_PATTERNS, STALE_PATTERNS
from acav1m_hf.validate import validate_release
from curation.cli import main
from tests.conftest import COMMIT, REPO_ID, release_files
from tests.synthetic import make_clip, write_video_file

REPO = Path(__file__).resolve().parents[1]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``acav1m ARGV``: its exit status, stdout and stderr."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_curate(tmp_path: Path, capsys) -> None:
    clip = write_video_file(tmp_path / "blob.mp4", make_clip(seconds=4.0, seed=3))
    out = tmp_path / "out"
    code, stdout, _ = cli(capsys, "curate", clip, "-o", out, "--clip-seconds", 2, "--keep-flagged")
    assert code == 0
    counts = json.loads((out / layout.REPORT).read_text())["counts"]["clips"]
    assert counts["kept"] == 2 and counts["total"] == 2
    assert stdout == f"{out}: 2 clips kept, {counts['rejected']} rejected; see report.json and inputs.jsonl\n"
    assert validate_release(out) == []


def test_validate(release: Path, release_copy: Path, capsys) -> None:
    assert cli(capsys, "validate", release) == (0, f"{release}: valid\n", "")
    shard = layout.list_shards(release_copy)["train"][0]
    shard.write_bytes(shard.read_bytes()[:-1024])
    code, stdout, stderr = cli(capsys, "validate", release_copy)
    assert code == 1 and stdout == ""
    lines = stderr.splitlines()
    assert lines[-1].startswith(f"{release_copy}: ") and lines[-1].endswith(" problem(s)")
    assert any(line.startswith("error: ") and shard.name in line for line in lines[:-1]), stderr


def test_croissant_rewrites_the_metadata(release: Path, release_copy: Path, capsys) -> None:
    (release_copy / layout.CROISSANT).unlink()
    code, stdout, _ = cli(capsys, "croissant", release_copy)
    assert code == 0 and stdout == f"{release_copy / layout.CROISSANT}\n"
    assert (release_copy / layout.CROISSANT).read_bytes() == (release / layout.CROISSANT).read_bytes()


def test_info_reports_the_release(release: Path, capsys) -> None:
    code, stdout, _ = cli(capsys, "info", release)
    assert code == 0
    report = json.loads((release / layout.REPORT).read_text())
    lines = stdout.splitlines()
    assert lines[0] == f"release {release}"
    clips = report["counts"]["clips"]
    assert f"clips:  {clips['kept']} kept, {clips['rejected']} rejected of {clips['total']}" in lines
    rows = {s: pq.ParquetFile(release / layout.index_name(s)).metadata.num_rows for s in layout.list_shards(release)}
    for split, n in rows.items():
        assert any(line.strip().startswith(f"{split}: {n} clips, ") for line in lines), (split, stdout)
    column = "alignment.instance.score"
    scores = [v for s in rows for v in pq.read_table(release / layout.index_name(s))[column].to_pylist()]
    scored = sum(v is not None for v in scores)
    assert scored and f"{column}: {scored} of {len(scores)} clips scored" in lines


def test_info_as_a_subprocess(release: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "acav1m_hf.cli", "info", str(release)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"release {release}\n") and "filter pass rates" in done.stdout


@pytest.mark.slow
def test_demo_curates_validates_and_loads_the_sample_clips(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    out = tmp_path / "acav1m"
    code, stdout, _ = cli(capsys, "demo", "-o", out, "--clip-seconds", 4)
    assert code == 0, stdout
    assert validate_release(out) == []
    report = json.loads((out / layout.REPORT).read_text())
    assert report["counts"]["inputs"]["total"] == 5  # the bundled sample manifest
    assert "    valid: checksums, schema of every sample, index, card and Croissant agree" in stdout
    assert f'3/3 loading it back: load_dataset("{out.name}") from {out.parent.resolve()}' in stdout
    keys = {k for s in layout.list_shards(out) for k in pq.read_table(out / layout.index_name(s))["key"].to_pylist()}
    (shown,) = [line for line in stdout.splitlines() if ": caption " in line]
    assert shown.split()[1].rstrip(":") in keys, shown


def test_site(release: Path, tmp_path: Path, capsys) -> None:
    code, stdout, _ = cli(capsys, "site", release, "-o", tmp_path / "site", "--max-media", 1)
    assert code == 0 and stdout == f"site written to {tmp_path / 'site'}\n"
    assert (tmp_path / "site" / "index.html").is_file()
    assert len(list((tmp_path / "site" / "media").glob("*.mp4"))) == 1


def test_push(release: Path, capsys, hub: SimpleNamespace) -> None:
    before = release_files(release)
    code, stdout, _ = cli(capsys, "push", release, REPO_ID, "--private")
    assert code == 0 and stdout == f"{COMMIT.commit_url}\n"
    hub.api_class.assert_called_once_with(token=None)
    shards = sum(len(s) for s in layout.list_shards(release).values())
    message = f"ACAV-1M release 1.0.0 ({shards} shards)"
    assert hub.api.method_calls == [
        call.create_repo(REPO_ID, token=None, private=True, repo_type="dataset", exist_ok=True),
        call.list_repo_refs(REPO_ID, repo_type="dataset", token=None),
        call.upload_folder(
            repo_id=REPO_ID,
            folder_path=str(release),
            repo_type="dataset",
            token=None,
            revision=None,
            allow_patterns=list(RELEASE_PATTERNS),
            delete_patterns=list(STALE_PATTERNS),
            commit_message=message,
        ),
        call.create_tag(
            REPO_ID, tag="v1.0.0", tag_message=message, revision=COMMIT.oid, token=None, repo_type="dataset"
        ),
    ]
    assert release_files(release) == before


def test_push_refuses_a_folder_that_is_not_a_release(tmp_path: Path, capsys, hub: SimpleNamespace) -> None:
    code, stdout, stderr = cli(capsys, "push", tmp_path, REPO_ID)
    assert (code, stdout) == (2, "")
    assert stderr == f"acav1m push: {tmp_path}: no README.md (dataset card); is this a release folder?\n"
    hub.api_class.assert_not_called()


def test_download(tmp_path: Path, capsys, hub: SimpleNamespace) -> None:
    hub.snapshot.return_value = str(tmp_path / "local")
    code, stdout, _ = cli(capsys, "download", REPO_ID, "-o", tmp_path / "local", "--revision", "v1.0")
    assert code == 0 and stdout == f"{tmp_path / 'local'}\n"
    hub.snapshot.assert_called_once_with(
        REPO_ID,
        repo_type="dataset",
        revision="v1.0",
        local_dir=str(tmp_path / "local"),
        token=None,
        allow_patterns=list(RELEASE_PATTERNS),
    )

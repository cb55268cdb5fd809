"""Shared fixtures: one small release curated by the real pipeline, reused by the whole session."""

from __future__ import annotations

import csv
import shutil
from importlib import resources
from pathlib import Path

import pytest

from curation.config import CurationConfig
from curation.pipeline import curate

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SAMPLE_DATA = Path(str(resources.files("acav1m_hf") / "sample_data"))
HOSTILE_CAPTION = '<img src=x onerror="alert(1)"><script>window.pwned=1</script> & "quotes"'
RELEASE_CONFIG = CurationConfig(keep_flagged=True, clip_seconds=4.0)
"""Keep flagged clips so that every task label shows up; 4-s clips so that one input gives several clips."""


def release_inputs(folder: Path) -> list[str]:
    """The bundled sample manifest plus two synthetic clips (one with a hostile caption) in a second manifest."""
    from tests.synthetic import make_clip, write_video_file

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed, text in ((1, "A white blob flashes in sync with clicks."), (2, HOSTILE_CAPTION)):
        path = write_video_file(folder / f"synthetic_{seed}.mp4", make_clip(seconds=5.0, seed=seed))
        rows.append({"path": path.name, "video_id": f"synthetic_{seed}", "text": text, "license": "CC-BY-4.0"})
    with open(folder / "synthetic.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return [str(SAMPLE_DATA / "manifest.csv"), str(folder / "synthetic.csv")]


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A curated release folder (do not modify it: copy it with `release_copy`)."""
    base = tmp_path_factory.mktemp("release")
    root = base / "acav1m"
    curate(release_inputs(base / "inputs"), root, RELEASE_CONFIG)
    return root


@pytest.fixture
def release_copy(release: Path, tmp_path: Path) -> Path:
    """A private copy of the session release, for tests that damage it."""
    return Path(shutil.copytree(release, tmp_path / "acav1m"))


def release_files(root: Path) -> dict[str, bytes]:
    """Every file of a release by relative path: two runs compare equal when their releases are byte-identical."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def media() -> Path:
    if not MEDIA.is_dir():
        pytest.skip(f"real clips folder {MEDIA} not found")
    return MEDIA

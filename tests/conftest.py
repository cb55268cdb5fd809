"""Shared fixtures: one small release curated by the real pipeline, reused by the whole session.

Also the real clips' locations, the ``hub`` fixture (huggingface_hub as autospec mocks) and the one rule for
tests that need an optional dependency: `needs` / `missing_dependency`.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
from dataclasses import replace
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import NoReturn
from unittest.mock import create_autospec

import huggingface_hub
import pytest
from huggingface_hub import CommitInfo, GitRefs

from curation.calibration import ENVIRONMENT as CALIBRATION_ENVIRONMENT
from curation.config import CurationConfig
from curation.profiles import Profile, build_profile
from curation.run import curate

# The pipeline's tests run on synthetic clips, which the shipped calibrations (fitted on real footage) do not
# describe: they see the aligner's own scores. Tests of calibration give a file in their config, which wins.
os.environ[CALIBRATION_ENVIRONMENT] = "none"

SAMPLE_DATA = Path(str(resources.files("acav1m_hf") / "sample_data"))
TEST_MEDIA = Path(__file__).parent / "media"
"""Real clips that only the tests use; with SAMPLE_DATA, every real clip a test reads (tests/media/README.md)."""
SPEECH_CLIP = TEST_MEDIA / "forensics_hello_excerpt.mp4"
"""Real speech: a person saying "I will show a directory" (0-3.7 s of 5 s)."""
REQUIRE_TEST_DEPS = "ACAV1M_REQUIRE_TEST_DEPS"
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


DEDUP_EVERY_CLIP = CurationConfig(
    profile="paper", clip_seconds=4.0, keep_flagged=True, max_side=96, inputs_per_unit=2, dedup_threshold=-1.0
)
"""The paper profile deduplicating at a cosine of -1: every clip duplicates the first one kept (with `tiny_paper`)."""


def tiny_paper(config: CurationConfig) -> Profile:
    """The paper profile with no captioner or transcriber and a tiny random-weight ImageBind: embeddings, no download."""
    overrides = {"captioner": "none", "condenser": "extractive", "transcriber": "none"}
    overrides |= {"embedder_arch": "tiny", "embedder_checkpoint": "random", "offset_step": 0.5, "crops": 1}
    return build_profile(config, overrides)


def cpu_profile_verbatim_captions(config: CurationConfig) -> Profile:
    """The cpu profile without its condenser: the captions are the manifests' as written.

    The site's tests need the hostile caption to reach the pages verbatim; the condensed captions are tested on
    their own (tests/test_models_language.py).
    """
    return replace(build_profile(config), condenser=None)


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A curated release folder (do not modify it: copy it with `release_copy`)."""
    base = tmp_path_factory.mktemp("release")
    root = base / "acav1m"
    curate(release_inputs(base / "inputs"), root, RELEASE_CONFIG, profile_factory=cpu_profile_verbatim_captions)
    return root


@pytest.fixture
def release_copy(release: Path, tmp_path: Path) -> Path:
    """A private copy of the session release, for tests that damage it."""
    return Path(shutil.copytree(release, tmp_path / "acav1m"))


def release_files(root: Path) -> dict[str, bytes]:
    """Every file of a release by relative path: two runs compare equal when their releases are byte-identical."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


REPO_ID = "someone/acav1m"
COMMIT = CommitInfo(
    commit_url=f"https://huggingface.co/datasets/{REPO_ID}/commit/{'a' * 40}",
    commit_message="Upload",
    commit_description="",
    oid="a" * 40,
)
"""What the mocked ``upload_folder`` returns (the mocked ``list_repo_refs`` returns a repository without tags)."""


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """``HfApi`` (class and instance) and ``snapshot_download`` as autospec mocks, patched where hub.py imports them.

    ``create_autospec`` gives the mocks the installed huggingface_hub's real
    signatures: a call with a parameter it does not have raises. Nothing
    reaches the network.
    """
    api_class = create_autospec(huggingface_hub.HfApi)
    api_class.return_value.upload_folder.return_value = COMMIT
    api_class.return_value.list_repo_refs.return_value = GitRefs(branches=[], converts=[], tags=[])
    snapshot = create_autospec(huggingface_hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "HfApi", api_class)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    return SimpleNamespace(api_class=api_class, api=api_class.return_value, snapshot=snapshot)


def missing_dependency(reason: str) -> NoReturn:
    """Skip a test whose dependency is missing, or fail it where ``ACAV1M_REQUIRE_TEST_DEPS=1`` (``make test``).

    ``make test`` installs every test dependency first (``make setup-test``), so
    there a missing one is a broken setup, and a skip would hide that the
    test never ran. Outside it (a plain ``pytest`` on the base install) the
    tests of optional parts skip. Works at module level too.
    """
    if os.environ.get(REQUIRE_TEST_DEPS) == "1":
        pytest.fail(f"{reason}; {REQUIRE_TEST_DEPS}=1 requires every dependency make setup-test installs", False)
    pytest.skip(reason, allow_module_level=True)


def needs(*modules: str) -> None:
    """`missing_dependency` naming the first of ``modules`` that is not installed (this suite's `pytest.importorskip`).

    It looks the modules up without importing them (importing imagebind runs a
    broken ``__init__``): the test imports them itself, so that an installed
    but broken package is an error, not a skip.
    """
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a submodule whose parent package is missing
            found = False
        if not found:
            missing_dependency(f"{module} is not installed")

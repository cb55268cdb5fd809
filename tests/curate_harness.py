"""What the crash-safety tests (test_resume, test_run_safety) share: small synthetic inputs, the uninterrupted
reference release, ``acav1m curate`` in a subprocess, and an engine interrupted after some units.

Every case runs the real pipeline on synthetic clips; the config gives one input per unit and one clip per shard,
so that every crash point of a run is reached with a handful of clips.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from curation.config import CurationConfig
from curation.plan import Unit
from curation.run import UnitJob, curate
from tests.conftest import release_files
from tests.synthetic import make_clip, write_video_file

CONFIG = CurationConfig(clip_seconds=2.0, max_side=64, keep_flagged=True, inputs_per_unit=1, shard_max_samples=1)
"""One input per unit, one clip per shard: each 4.5-s input is one unit of two parts."""
REPO = Path(__file__).resolve().parents[1]


def synthetic_inputs(factory: pytest.TempPathFactory, count: int, first_seed: int) -> list[str]:
    """A folder of ``count`` 4.5-s synthetic clips (seeds from ``first_seed``), as the one input of a run."""
    folder = factory.mktemp("inputs")
    for i in range(count):
        write_video_file(folder / f"clip{i}.mp4", make_clip(seconds=4.5, seed=first_seed + i))
    return [str(folder)]


def config_file(factory: pytest.TempPathFactory, config: CurationConfig = CONFIG) -> Path:
    """``config`` as the JSON file ``acav1m curate --config`` reads."""
    path = factory.mktemp("config") / "config.json"
    path.write_text(json.dumps({**config.to_dict(), "split_fractions": list(config.split_fractions)}))
    return path


def uninterrupted_release(inputs: list[str], factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """The folder and files of an uninterrupted in-process run, alone in its folder (the CLI must give the same)."""
    root = factory.mktemp("reference") / "out"
    curate(inputs, root, CONFIG, log=quiet)
    return root, release_files(root)


def quiet(_: str) -> None:
    pass


def curate_cli(inputs: list[str], out: Path, config: Path, *flags: str, crash: str | None = None) -> subprocess.Popen:
    """``acav1m curate`` in a subprocess; ``crash`` is ``ACAV1M_TEST_CRASH`` (``event:n[:SIGNAL]``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ACAV1M_TEST_CRASH", None)
    if crash:
        env["ACAV1M_TEST_CRASH"] = crash
    command = [sys.executable, "-m", "curation.cli", "curate", *inputs, "-o", str(out), "--config", str(config)]
    return subprocess.Popen(
        [*command, *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Python installs its Ctrl-C handler only where SIGINT is not ignored, as it is under a shell's `&`.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


class StopAfter:
    """An engine that processes ``n`` units and is then interrupted, like a driver stopped (or killed) mid-run."""

    name = "stop-after"

    def __init__(self, n: int) -> None:
        self.n = n

    def run(self, units: list[Unit], job: UnitJob) -> list:
        for unit in units[: self.n]:
            job.process(unit)
        raise KeyboardInterrupt

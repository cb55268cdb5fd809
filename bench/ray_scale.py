"""Ray engine speed-up: clips/s with 1 and 2 workers (CPU tasks in flight), and the local engine for reference.

Inputs: ``--inputs`` synthetic videos (`tests.synthetic`: a textured scene
with a blob flashing in sync with clicks) of ``--seconds`` s at 640x360,
25 fps, H.264 + AAC, generated once into ``OUT/ray-inputs/``. Config: 4-s
clips, one input per unit (so there are as many units as inputs to spread),
cpu profile, everything else default.

One local Ray session (``num_cpus=2``, the machine's two cores) serves every
case, warmed up first so that no case pays for starting workers. The cases
alternate over ``--rounds`` rounds (1, 2, local; then 2, local, 1; ...) and
each figure is the median over rounds; every run writes a fresh release.

    .venv/bin/python bench/ray_scale.py --out bench/out
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_inputs(folder: Path, count: int, seconds: float) -> list[str]:
    from tests.synthetic import make_clip, write_video_file

    params = {"count": count, "seconds": seconds, "size": [360, 640], "version": 1}
    marker = folder / "inputs.json"
    if not (marker.exists() and json.loads(marker.read_text()) == params):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i in range(count):
            write_video_file(folder / f"v{i:03d}.mp4", make_clip(seconds=seconds, seed=100 + i, size=(360, 640)))
        marker.write_text(json.dumps(params))
    return [str(folder)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--inputs", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray session")
    args = parser.parse_args()

    import ray

    from curation.config import CurationConfig
    from curation.engines import LocalEngine, RayEngine
    from curation.run import curate

    inputs = make_inputs(args.out / "ray-inputs", args.inputs, args.seconds)
    config = CurationConfig(clip_seconds=4.0, inputs_per_unit=1, keep_flagged=True)
    work = args.out / "ray-runs"
    shutil.rmtree(work, ignore_errors=True)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)

    class Timed:
        """The engine, timed: the units' processing apart from planning and finalize (which do not scale)."""

        def __init__(self, engine: object) -> None:
            self.engine, self.name, self.seconds = engine, engine.name, 0.0

        def run(self, units, job):
            start = time.perf_counter()
            try:
                return self.engine.run(units, job)
            finally:
                self.seconds = time.perf_counter() - start

    def run(name: str, engine: object) -> tuple[float, float, int]:
        out = work / f"{name}-{time.monotonic_ns()}"
        timed = Timed(engine)
        start = time.perf_counter()
        report = curate(inputs, out, config, engine=timed, log=lambda _: None)
        seconds = time.perf_counter() - start
        shutil.rmtree(out)
        return seconds, timed.seconds, report["counts"]["clips"]["total"]

    run("warmup", RayEngine(workers=args.cpus, progress=False))  # starts the workers and loads the profile in each
    cases = {
        "ray-1": lambda: RayEngine(workers=1, progress=False),
        "ray-2": lambda: RayEngine(workers=2, progress=False),
        "local": lambda: LocalEngine(progress=False),
    }
    total: dict[str, list[float]] = {name: [] for name in cases}
    units: dict[str, list[float]] = {name: [] for name in cases}
    clips = 0
    names = list(cases)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds, engine_seconds, clips = run(name, cases[name]())
            total[name].append(clips / seconds)
            units[name].append(clips / engine_seconds)
            print(
                f"round {r + 1} {name}: {clips} clips in {seconds:.2f} s = {clips / seconds:.2f} clips/s "
                f"(units alone {engine_seconds:.2f} s = {clips / engine_seconds:.2f} clips/s)",
                flush=True,
            )
    ray.shutdown()

    def paired(rates: dict[str, list[float]], a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))

    print(f"\n{args.inputs} inputs x {args.seconds:g} s (640x360), {clips} clips of 4 s, {os.cpu_count()} CPUs here")
    for name in cases:
        print(
            f"{name:6s} {statistics.median(total[name]):6.2f} clips/s end to end, "
            f"{statistics.median(units[name]):6.2f} clips/s processing units (medians of {args.rounds})"
        )
    rounds = ", ".join(f"{x / y:.2f}" for x, y in zip(total["ray-2"], total["ray-1"], strict=True))
    print(f"per-round ratio ray-2 / ray-1, end to end: {rounds}")
    print(f"speed-up 1 -> 2 Ray workers: {paired(total, 'ray-2', 'ray-1'):.2f}x end to end, ", end="")
    print(f"{paired(units, 'ray-2', 'ray-1'):.2f}x processing units (median of per-round ratios)")
    print(f"ray-1 vs local engine: {paired(total, 'ray-1', 'local'):.2f}x end to end")


if __name__ == "__main__":
    main()

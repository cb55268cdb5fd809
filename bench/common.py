"""Shared helpers of the benchmarks: machine facts, paired timing rounds, ratios against goals, py-spy summaries.

Every benchmark compares peers *in one run*, as ratios: the machine is shared
and noisy, so an absolute time means little, while two readers timed back to
back in the same round see the same noise. `paired_rounds` runs every case
once per round (the order rotates each round, so no case always goes first)
and `ratio` takes the per-round ratio of two cases, then the median over
rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_OUT = REPO / "bench" / "out"
MB = 1e6


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores this process may use, CPU model, memory, library versions."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str] = {}
    for name in ("numpy", "av", "torch", "torchcodec", "webdataset", "datasets", "mlcroissant", "pyarrow"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # a missing optional library is just not listed
            continue
    try:
        import av

        versions["ffmpeg (PyAV's)"] = ".".join(map(str, av.library_versions["libavcodec"])) + " (libavcodec)"
    except Exception:  # noqa: BLE001
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gb": memory_gb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def machine_line() -> str:
    m = machine()
    return f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gb']} GB RAM, Python {m['python']}"


# --------------------------------------------------------------------------- page cache


def warm(paths: Iterable[Path], block: int = 8 << 20) -> tuple[int, float]:
    """Read every file once so that all readers start from a warm page cache; (bytes, seconds)."""
    total, start = 0, time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(block):
                total += len(chunk)
    return total, time.perf_counter() - start


def page_cache_fits(paths: Iterable[Path]) -> bool:
    """Whether the files fit in half the available memory (so a warm read stays warm)."""
    size = sum(p.stat().st_size for p in paths)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return size < int(line.split()[1]) * 1024 / 2
    except OSError:
        pass
    return True


# --------------------------------------------------------------------------- timing


@dataclass
class Run:
    """One timed run of a case: seconds and what it processed."""

    seconds: float
    samples: int = 0
    bytes: int = 0
    cpu_seconds: float = float("nan")
    """User + system CPU time of this process, its threads and its reaped children (DataLoader workers)."""

    @property
    def cores(self) -> float:
        """Average number of cores busy during the run (CPU time over wall time)."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else float("nan")

    @property
    def samples_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


Case = Callable[[], tuple[int, int]]
"""A benchmark case: runs once and returns (samples, bytes) it processed."""


def _cpu() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_case(case: Case) -> Run:
    cpu, start = _cpu(), time.perf_counter()
    samples, nbytes = case()
    seconds = time.perf_counter() - start
    return Run(seconds, samples, nbytes, _cpu() - cpu)


def paired_rounds(cases: dict[str, Case], rounds: int, verbose: bool = True) -> dict[str, list[Run]]:
    """Run every case once per round, rotating the order each round; the runs of each case, by round."""
    names = list(cases)
    runs: dict[str, list[Run]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            run = time_case(cases[name])
            runs[name].append(run)
            if verbose:
                print(
                    f"  round {r + 1}/{rounds} {name:<28} {run.seconds:8.2f} s  {run.mb_s:9.1f} MB/s  "
                    f"{run.samples_s:9.1f} samples/s  {run.cores:4.2f} cores",
                    flush=True,
                )
    return runs


def _ratio_format(value: float) -> str:
    """Two decimals, or two significant digits for ratios below 0.1 (0.0021x, not 0.00x)."""
    return ".2f" if abs(value) >= 0.1 or value == 0 else ".2g"


@dataclass
class Ratio:
    label: str
    numerator: str
    denominator: str
    median: float
    low: float
    high: float
    goal: float | None = None
    per: str = "samples"

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.median >= self.goal

    def line(self) -> str:
        verdict = "" if self.goal is None else f"  goal >= {self.goal:.2f}: {'MET' if self.met else 'MISSED'}"
        f = _ratio_format(self.median)
        return f"{self.label:<58} {self.median:6{f}}x  (rounds {self.low:{f}}-{self.high:{f}}){verdict}"


def ratio(
    runs: dict[str, list[Run]],
    numerator: str,
    denominator: str,
    label: str | None = None,
    goal: float | None = None,
    per: str = "samples",
) -> Ratio:
    """Throughput of ``numerator`` over ``denominator``, paired round by round (samples/s, or MB/s with per="bytes")."""

    def rate(run: Run) -> float:
        return run.samples_s if per == "samples" else run.mb_s

    pairs = [rate(a) / rate(b) for a, b in zip(runs[numerator], runs[denominator], strict=True)]
    return Ratio(
        label or f"{numerator} / {denominator}",
        numerator,
        denominator,
        statistics.median(pairs),
        min(pairs),
        max(pairs),
        goal,
        per,
    )


def summary_rows(runs: dict[str, list[Run]]) -> list[dict[str, Any]]:
    """Per case: median seconds, MB/s and samples/s over its rounds."""
    rows = []
    for name, case_runs in runs.items():
        rows.append(
            {
                "case": name,
                "seconds": statistics.median(r.seconds for r in case_runs),
                "mb_s": statistics.median(r.mb_s for r in case_runs),
                "samples_s": statistics.median(r.samples_s for r in case_runs),
                "cores": statistics.median(r.cores for r in case_runs),
                "samples": case_runs[0].samples,
                "bytes": case_runs[0].bytes,
                "rounds": len(case_runs),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]], note: dict[str, str] | None = None) -> None:
    note = note or {}
    print(f"  {'case':<30} {'median s':>9} {'MB/s':>9} {'samples/s':>10} {'samples':>8} {'cores':>6}")
    for row in rows:
        extra = f"   {note[row['case']]}" if row["case"] in note else ""
        print(
            f"  {row['case']:<30} {row['seconds']:9.2f} {row['mb_s']:9.1f} {row['samples_s']:10.1f} "
            f"{row['samples']:8d} {row.get('cores', float('nan')):6.2f}{extra}"
        )


# --------------------------------------------------------------------------- results


def bench_parser(
    doc: str | None,
    rounds: int,
    only: str | None = "comma-separated cases to run",
    rounds_help: str = "how many times each case is timed",
) -> argparse.ArgumentParser:
    """The options of a benchmark: ``--rounds``, ``--out`` and (unless ``only`` is None) ``--only``."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    if only is not None:
        p.add_argument("--only", default="", help=only)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the JSON result (default: bench/out)")
    return p


@dataclass
class Result:
    """What one benchmark script reports: figures, ratios against goals, notes; saved as JSON for run_all."""

    bench: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def print(self) -> None:
        print(f"\n== {self.bench}: figures ==")
        if self.rows:
            print_table(self.rows)
        for key, value in self.figures.items():
            print(f"  {key}: {value}")
        if self.ratios:
            print(f"== {self.bench}: ratios ==")
            for r in self.ratios:
                print("  " + r.line())
        for note in self.notes:
            print(f"  note: {note}")

    def compare(
        self,
        runs: dict[str, list[Run]],
        numerator: str,
        denominator: str,
        label: str,
        goal: float | None = None,
        per: str = "samples",
    ) -> None:
        """Add `ratio` of the two cases, if both ran: ``--only`` may leave either out."""
        if numerator in runs and denominator in runs:
            self.ratios.append(ratio(runs, numerator, denominator, label, goal, per))

    def report(self, out: Path, only: str = "") -> Path:
        """Print, then `save`: how every benchmark ends."""
        self.print()
        return self.save(out, only)

    def save(self, out: Path, only: str = "") -> Path:
        """``OUT/{bench}.json``; a partial run (``--only``) goes to ``OUT/partial/`` so it never replaces a full one."""
        if only:
            out = out / "partial"
        out.mkdir(parents=True, exist_ok=True)
        path = out / (f"{self.bench}-{only.replace(',', '+')}.json" if only else f"{self.bench}.json")
        payload = {
            "bench": self.bench,
            "machine": machine(),
            "params": self.params,
            "rows": self.rows,
            "ratios": [{**asdict(r), "met": r.met} for r in self.ratios],
            "figures": self.figures,
            "notes": self.notes,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        return path


# --------------------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- profiling


def pyspy_record(
    argv: Sequence[str],
    raw_out: Path,
    rate: int = 100,
    subprocesses: bool = False,
    native: bool = False,
    timeout: float | None = None,
) -> Path:
    """Run ``argv`` under ``py-spy record`` and write the collapsed stacks (``--format raw``) to ``raw_out``."""
    pyspy = Path(sys.executable).with_name("py-spy")
    command = [
        str(pyspy) if pyspy.exists() else "py-spy",
        "record",
        "--format",
        "raw",
        "-r",
        str(rate),
        "-o",
        str(raw_out),
    ]
    if subprocesses:
        command.append("--subprocesses")
    if native:
        command.append("--native")
    raw_out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*command, "--", *argv], check=True, timeout=timeout, cwd=REPO, stdout=subprocess.DEVNULL)
    return raw_out


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (dir/file.py)``: one entry per function, not per line.

    A native frame without a symbol (``0x7f.. (libswscale-88e9.so.9)``) becomes its library (``[libswscale]``).
    """
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if name.startswith("0x"):
        return f"[{where.split('.so')[0].split('-')[0]}]"
    file = where.rsplit(":", 1)[0]
    short = "/".join(Path(file).parts[-2:]) if file else ""
    return f"{name} ({short})" if short else name


def summarize_profile(raw: Path, top: int = 12, focus: str | None = None) -> dict[str, Any]:
    """Self and inclusive time per function of a py-spy collapsed-stack file, as shares of all samples.

    With ``focus``, only the stacks that pass through a function of that name count, and only the
    frames below its outermost call are shown (where the time of that call goes).
    """
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        if focus is not None:
            at = next((i for i, f in enumerate(frames) if f.split(" (")[0] == focus), None)
            if at is None:
                continue
            frames = frames[at:]
        total += n
        if frames:
            self_time[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    if total == 0:
        return {"samples": 0, "self": [], "inclusive": []}
    return {
        "samples": total,
        "self": [(name, round(100 * n / total, 1)) for name, n in self_time.most_common(top)],
        "inclusive": [(name, round(100 * n / total, 1)) for name, n in inclusive.most_common(top)],
    }


def format_profile(summary: dict[str, Any], title: str) -> str:
    lines = [f"profile: {title} ({summary['samples']} samples)", "  self time (where the CPU is):"]
    lines += [f"    {pct:5.1f}%  {name}" for name, pct in summary["self"]]
    lines.append("  inclusive time (what it is spent under):")
    lines += [f"    {pct:5.1f}%  {name}" for name, pct in summary["inclusive"]]
    return "\n".join(lines)


def shard_writer(folder: Path, max_samples: int, max_bytes: int = 1 << 40, pattern: str = "part-{:05d}.tar") -> Any:
    """A `curation.writer.ShardWriter` writing ``folder/{pattern}``, whichever constructor it has.

    The writer takes a `Store` and store-relative names in its newer form, and
    a ``name_for(part) -> Path`` in its older one.
    """
    import inspect

    from curation import writer

    folder.mkdir(parents=True, exist_ok=True)
    parameters = list(inspect.signature(writer.ShardWriter.__init__).parameters)
    if "store" in parameters:
        return writer.ShardWriter(writer.Store(str(folder)), pattern.format, max_samples, max_bytes)
    return writer.ShardWriter(lambda part: folder / pattern.format(part), max_samples, max_bytes)

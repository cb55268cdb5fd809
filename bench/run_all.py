"""Run every benchmark, then the py-spy profiles, and write ``OUT/summary.md`` (the figures BENCHMARKS.md records).

    .venv/bin/python bench/run_all.py --size-gb 1 --out bench/out

Steps (each a subprocess, its output echoed and kept in ``OUT/logs/``):
generate or reuse the release (`bench/gen_shards.py`), read path
(`bench/read_bench.py`), memory (`bench/memory_bench.py`), curation
(`bench/curation_bench.py`), fetching (`bench/fetch_bench.py`), write path (`bench/write_bench.py`), Croissant
(`bench/croissant_bench.py`, on the demo release and, with ``--croissant-scale``,
on the benchmark release), then py-spy profiles of the main cases
(``OUT/profiles/*.summary.txt``). ``--quick`` runs everything on tiny inputs
(what the smoke test does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    DEFAULT_OUT,
    REPO,
    _ratio_format,
    format_profile,
    machine,
    pyspy_record,
    summarize_profile,
)
from bench.gen_shards import release_dir, release_options  # noqa: E402

BENCHES = ("gen", "read", "memory", "curation", "fetch", "write", "croissant")


def _release_args(args: argparse.Namespace) -> list[str]:
    return [
        "--size-gb",
        f"{args.size_gb:g}",
        "--clip-seconds",
        f"{args.clip_seconds:g}",
        "--samples-per-shard",
        str(args.samples_per_shard),
    ]


def commands(args: argparse.Namespace) -> dict[str, list[str]]:
    """The command line of every benchmark for these arguments."""
    py, out = sys.executable, ["--out", str(args.out)]
    release = _release_args(args)
    q = args.quick

    scale = (
        ["--scale-release", str(release_dir(args.out, args.size_gb, args.clip_seconds))] if args.croissant_scale else []
    )
    return {
        "gen": [py, "bench/gen_shards.py", *release, *out],
        "read": [py, "bench/read_bench.py", *release, *out]
        + (["--rounds", "1", "--decoded-rounds", "1", "--decoded-clips", "4", "--decoded-per-shard", "1"] if q else []),
        "memory": [py, "bench/memory_bench.py", *release, *out]
        + (["--shards", "3", "--decoded-per-shard", "1"] if q else []),
        "curation": [py, "bench/curation_bench.py", *out]
        + (
            ["--synthetic", "1", "--input-seconds", "1", "--clip-seconds", "1", "--no-bundled", "--rounds", "1"]
            if q
            else []
        ),
        "fetch": [py, "bench/fetch_bench.py", *out]
        + (
            ["--videos", "2", "--source-seconds", "4", "--clip-seconds", "2", "--rounds", "1", "--concurrency", "1,2"]
            if q
            else []
        ),
        "write": [py, "bench/write_bench.py", *release, *out]
        + (["--write-mb", "1", "--per-shard", "4", "--rounds", "1"] if q else []),
        "croissant": [py, "bench/croissant_bench.py", *out, *scale]
        + (["--rounds", "1", "--release", str(release_dir(args.out, args.size_gb, args.clip_seconds))] if q else [])
        + (["--profile"] if args.profile else []),
    }


def profiles(args: argparse.Namespace) -> dict[str, list[Any]]:
    """py-spy runs: (argv, focus function, description, py-spy options)."""
    py, out = sys.executable, ["--out", str(args.out)]
    release = _release_args(args)
    q = args.quick
    decoded = ["--decoded-rounds", "1"] + (["--decoded-clips", "4", "--decoded-per-shard", "1"] if q else [])
    return {
        "read-stream-raw": [
            [py, "bench/read_bench.py", *release, *out, "--only", "stream-raw", "--rounds", "3"],
            "stream_raw",
            "acav1m stream, undecoded (3 passes over the release)",
            {},
        ],
        "read-raw-tar": [
            [py, "bench/read_bench.py", *release, *out, "--only", "raw-tar-stream", "--rounds", "3"],
            "raw_tar",
            "raw tarfile read, stream mode (3 passes over the release)",
            {},
        ],
        "read-stream-decoded": [
            [py, "bench/read_bench.py", *release, *out, "--only", "stream-decoded", *decoded],
            "stream_decoded",
            "acav1m stream, decoded, in-process",
            {"native": True},
        ],
        "curate": [
            [py, "bench/curation_bench.py", *out, "--only", "curate", "--rounds", "1"]
            + (["--synthetic", "1", "--input-seconds", "1", "--clip-seconds", "1", "--no-bundled"] if q else []),
            "run_curate",
            "curate, CPU profile, local engine",
            {"native": True},
        ],
        "write-shardwriter": [
            [py, "bench/write_bench.py", *release, *out, "--only", "shardwriter", "--rounds", "3"]
            + (["--write-mb", "1", "--per-shard", "4"] if q else []),
            "write_shardwriter",
            "ShardWriter writing the in-memory samples",
            {},
        ],
    }


def run_logged(name: str, command: list[str], logs: Path) -> tuple[int, float]:
    logs.mkdir(parents=True, exist_ok=True)
    print(f"\n### {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    with open(logs / f"{name}.log", "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            if "\r" in line:  # progress bars
                line = line.rsplit("\r", 1)[-1]
            sys.stdout.write(line)
            log.write(line)
        code = process.wait()
    return code, time.perf_counter() - start


def _fmt(value: float) -> str:
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def summary(args: argparse.Namespace, ran: dict[str, Any]) -> str:
    m = machine()
    lines = [
        "# Benchmark summary",
        "",
        f"- command: `{' '.join(ran['argv'])}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M')}; total {ran['seconds']:.0f} s",
        f"- machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gb']} GB RAM, {m['platform']}, Python {m['python']}",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}",
        "",
    ]
    for name in BENCHES:
        path = args.out / f"{name}.json"
        if name == "gen" or not path.exists() or name not in ran["benches"]:
            continue
        data = json.loads(path.read_text())
        lines += [f"## {name}", ""]
        rows = data["rows"]
        if rows and "peak_mb" in rows[0]:
            lines += ["| case | samples | baseline RSS MB | peak RSS MB | growth MB |", "|---|---:|---:|---:|---:|"]
            lines += [
                f"| {r['case']} | {r['samples']} | {r['baseline_mb']} | {r['peak_mb']} | {r['growth_mb']} |"
                for r in rows
            ]
        elif rows:
            lines += ["| case | median s | MB/s | samples/s | samples | cores busy |", "|---|---:|---:|---:|---:|---:|"]
            lines += [
                f"| {r['case']} | {r['seconds']:.2f} | {_fmt(r['mb_s'])} | {_fmt(r['samples_s'])} | {r['samples']} "
                f"| {r.get('cores', float('nan')):.2f} |"
                for r in rows
            ]
        if data["ratios"]:
            lines += ["", "| ratio | median | rounds | goal | verdict |", "|---|---:|---:|---:|---|"]
            for r in data["ratios"]:
                lower_better = name == "memory"
                goal = "<= 1.20" if lower_better else ("" if r["goal"] is None else f">= {r['goal']:.2f}")
                verdict = (
                    ("met" if r["median"] <= 1.2 else "MISSED")
                    if lower_better
                    else ("" if r["met"] is None else "met" if r["met"] else "MISSED")
                )
                label = r["label"].replace(" (goal <= 1.20)", "")
                f = _ratio_format(r["median"])
                lines.append(f"| {label} | {r['median']:{f}} | {r['low']:{f}}-{r['high']:{f}} | {goal} | {verdict} |")
        for key, value in data["figures"].items():
            lines.append(f"- {key}: {value}")
        for note in data["notes"]:
            lines.append(f"- note: {note}")
        lines.append("")
    for name, text in ran.get("profiles", {}).items():
        lines += [f"## profile: {name}", "", "```", text, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    release_options(p)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the py-spy profiles")
    p.add_argument("--croissant-scale", action="store_true", help="also time mlcroissant on the benchmark release")
    p.add_argument("--quick", action="store_true", help="tiny inputs, one round: checks that everything runs")
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    if args.quick:
        args.size_gb, args.clip_seconds, args.samples_per_shard = min(args.size_gb, 0.0005), 1.0, 2
    start = time.perf_counter()
    selected = [b for b in BENCHES if b in args.only.split(",")]
    cmds = commands(args)
    ran: dict[str, Any] = {"argv": [Path(sys.executable).name, *sys.argv], "benches": [], "profiles": {}}
    failed = []
    for name in selected:
        code, seconds = run_logged(name, cmds[name], args.out / "logs")
        print(f"### {name}: exit {code} in {seconds:.0f} s", flush=True)
        (failed if code else ran["benches"]).append(name)
    if args.profile:
        for name, (argv_, focus, what, options) in profiles(args).items():
            bench = name.split("-")[0]
            if (bench if bench != "curate" else "curation") not in selected:
                continue
            raw = args.out / "profiles" / f"{name}.txt"
            print(f"\n### profile {name}: py-spy record -- {' '.join(argv_)}", flush=True)
            try:
                pyspy_record(argv_, raw, **options)
            except (subprocess.CalledProcessError, FileNotFoundError) as exc:
                if not options.get("native"):
                    print(f"profile {name} failed: {exc}")
                    failed.append(f"profile {name}")
                    continue
                pyspy_record(argv_, raw)  # --native needs symbols; fall back to Python frames
            text = format_profile(summarize_profile(raw, top=14, focus=focus), f"{what}; inside {focus}()")
            (args.out / "profiles" / f"{name}.summary.txt").write_text(text + "\n")
            ran["profiles"][name] = text
            print(text, flush=True)
    ran["seconds"] = time.perf_counter() - start
    text = summary(args, ran)
    (args.out / "summary.md").write_text(text + "\n")
    print(f"\nsummary: {args.out / 'summary.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

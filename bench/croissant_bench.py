"""Croissant: how long ``mlcroissant validate`` and loading every record with mlcroissant take on the demo release.

The demo release is what ``acav1m demo`` builds: `curation.run.curate`
of the bundled ``acav1m_hf/sample_data/manifest.csv`` (cached in
``OUT/demo-release``). Cases, each in a fresh subprocess so that import costs
are counted the way a user pays them:

* ``import``: ``python -c "import mlcroissant"`` (the floor under every CLI call);
* ``validate-cli``: ``mlcroissant validate --jsonld croissant.json``;
* ``load-cold``: ``mlc.Dataset(croissant.json)`` then every record of every
  record set (``clips`` and one per member type), with an empty
  ``CROISSANT_CACHE`` (so shards are hashed and extracted);
* ``load-warm``: the same with the extraction cache of the previous run;
* ``direct``: the same bytes without mlcroissant (pyarrow reads the Parquet
  index, ``tarfile`` every member): the limit.

``--profile`` records ``load-cold`` with py-spy and prints where the time goes.

    .venv/bin/python bench/croissant_bench.py --out bench/out --profile
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    REPO,
    Result,
    Run,
    bench_parser,
    format_profile,
    machine_line,
    pyspy_record,
    ratio,
    summarize_profile,
    summary_rows,
    time_case,
)


def demo_release(out: Path, clip_seconds: float = 10.0) -> Path:
    """The release ``acav1m demo`` makes (curate of the bundled manifest), cached."""
    root = out / f"demo-release-{clip_seconds:g}s"
    if (root / "croissant.json").exists() and (root / "report.json").exists() and not (root / "_work").exists():
        return root
    from curation.config import CurationConfig
    from curation.run import curate

    shutil.rmtree(root, ignore_errors=True)
    manifest = REPO / "acav1m_hf" / "sample_data" / "manifest.csv"
    curate([str(manifest)], root, CurationConfig(clip_seconds=clip_seconds))
    return root


def child_load(jsonld: str) -> dict[str, object]:
    """Every record of every record set, with timings (run in a subprocess with its own CROISSANT_CACHE)."""
    start = time.perf_counter()
    import mlcroissant as mlc

    from acav1m_hf.croissant import safe_extraction

    imported = time.perf_counter()
    dataset = mlc.Dataset(jsonld)
    opened = time.perf_counter()
    per_set: dict[str, dict[str, float]] = {}
    records, nbytes = 0, 0
    with safe_extraction():  # mlcroissant's extractall has no filter of its own
        for record_set in dataset.metadata.record_sets:
            t = time.perf_counter()
            n = 0
            for record in dataset.records(record_set.uuid):
                n += 1
                for value in record.values():
                    if isinstance(value, bytes):
                        nbytes += len(value)
            per_set[record_set.uuid] = {"records": n, "seconds": round(time.perf_counter() - t, 3)}
            records += n
    end = time.perf_counter()
    return {
        "import_s": imported - start,
        "open_s": opened - imported,
        "records_s": end - opened,
        "total_s": end - start,
        "records": records,
        "bytes": nbytes,
        "per_set": per_set,
    }


def direct(root: Path) -> tuple[int, int]:
    """The same records without mlcroissant: index rows with pyarrow, member bytes with tarfile."""
    import tarfile

    import pyarrow.parquet as pq

    records, nbytes = 0, 0
    for index in sorted((root / "metadata").glob("*.parquet")):
        records += len(pq.read_table(index).to_pylist())
    for shard in sorted((root / "data").glob("*.tar")):
        with tarfile.open(shard, "r:") as tar:
            for member in tar:
                if member.isreg():
                    nbytes += len(tar.extractfile(member).read())
                    records += 1
    return records, nbytes


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Wall seconds, stdout and CPU seconds of a subprocess."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout, cpu


def measure(root: Path, label: str, rounds: int, out: Path, result: Result) -> dict[str, list[Run]]:
    """The cases over one release; rows are named ``{label}: {case}``."""
    jsonld = root / "croissant.json"
    shards = sorted((root / "data").glob("*.tar"))
    print(f"{label}: {root} ({len(shards)} shards, {sum(p.stat().st_size for p in shards) / 1e6:.1f} MB)")
    cli = Path(sys.executable).with_name("mlcroissant")
    runs: dict[str, list[Run]] = {k: [] for k in ("import", "validate-cli", "load-cold", "load-warm", "direct")}
    details: dict[str, dict[str, object]] = {}
    for r in range(rounds):
        seconds, _, cpu = _timed([sys.executable, "-c", "import mlcroissant"])
        runs["import"].append(Run(seconds, 1, 0, cpu))
        seconds, _, cpu = _timed([str(cli), "validate", "--jsonld", str(jsonld)])
        runs["validate-cli"].append(Run(seconds, 1, 0, cpu))
        cache = Path(tempfile.mkdtemp(prefix="croissant-cache-", dir=out))
        env = {**os.environ, "CROISSANT_CACHE": str(cache)}
        try:
            for name in ("load-cold", "load-warm"):
                seconds, text, cpu = _timed([sys.executable, __file__, "--child-load", str(jsonld)], env)
                info = json.loads(text.strip().splitlines()[-1])
                runs[name].append(Run(seconds, int(info["records"]), int(info["bytes"]), cpu))
                details[name] = info
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        runs["direct"].append(time_case(lambda: direct(root)))
        print(
            f"  round {r + 1}/{rounds}: " + "  ".join(f"{k} {v[-1].seconds:.2f} s" for k, v in runs.items()), flush=True
        )
    for row in summary_rows(runs):
        result.rows.append({**row, "case": f"{label}: {row['case']}"})
    cold = details.get("load-cold")
    if cold:
        result.figures[f"{label}: load-cold breakdown, s"] = {
            "import mlcroissant": round(cold["import_s"], 2),
            "mlc.Dataset (parse + validate)": round(cold["open_s"], 2),
            "all records": round(cold["records_s"], 2),
        }
        result.figures[f"{label}: load-cold per record set (records, s)"] = {
            k: (v["records"], v["seconds"]) for k, v in cold["per_set"].items()
        }
    warm = details.get("load-warm")
    if warm:
        result.figures[f"{label}: load-warm, all records, s"] = round(warm["records_s"], 2)
    result.ratios.append(ratio(runs, "load-cold", "direct", f"{label}: mlcroissant load, cold / pyarrow + tarfile"))
    result.ratios.append(ratio(runs, "load-warm", "direct", f"{label}: mlcroissant load, warm / pyarrow + tarfile"))
    return runs


def profile(root: Path, label: str, out: Path, top: int) -> str:
    cache = Path(tempfile.mkdtemp(prefix="croissant-cache-", dir=out))
    os.environ["CROISSANT_CACHE"] = str(cache)
    try:
        raw = pyspy_record(
            [sys.executable, __file__, "--child-load", str(root / "croissant.json")],
            out / "profiles" / f"croissant-{label}.txt",
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        os.environ.pop("CROISSANT_CACHE", None)
    whole = format_profile(summarize_profile(raw, top=top), f"mlcroissant load, cold cache, {label} (whole process)")
    records = format_profile(
        summarize_profile(raw, top=top, focus="Records.__iter__"),
        f"mlcroissant load, cold cache, {label} (inside Records.__iter__: reading the records)",
    )
    text = whole + "\n" + records
    (out / "profiles" / f"croissant-{label}.summary.txt").write_text(text + "\n")
    return text


def run(args: argparse.Namespace) -> Result:
    print(machine_line())
    result = Result("croissant", params={k: str(v) for k, v in vars(args).items()})
    demo = Path(args.release) if args.release else demo_release(args.out, args.clip_seconds)
    targets = [("demo" if not args.release else "release", demo, args.rounds)]
    if args.scale_release:
        targets.append(("scale", Path(args.scale_release), 1))
    for label, root, rounds in targets:
        measure(root, label, rounds, args.out, result)
        if args.profile:
            text = profile(root, label, args.out, args.top)
            result.figures[f"{label}: profile"] = str(args.out / "profiles" / f"croissant-{label}.summary.txt")
            print(text)
    return result


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__, rounds=3, only=None)
    p.add_argument("--clip-seconds", type=float, default=10.0, help="clip length of the demo release (acav1m demo: 10)")
    p.add_argument("--profile", action="store_true", help="record the cold load with py-spy")
    p.add_argument("--release", default=None, help="measure this release instead of the demo one")
    p.add_argument(
        "--scale-release", default=None, help="also measure this release (e.g. the read benchmark's), 1 round"
    )
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--child-load", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_load:
        print(json.dumps(child_load(args.child_load)))
        return 0
    run(args).report(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

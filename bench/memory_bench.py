"""Memory: peak RSS of `acav1m_hf.stream` over 1 shard against 20 shards, each in a fresh subprocess.

Two modes:

* ``raw``: ``stream(decode=False)`` over the release's shards (about 40 MB
  each at 100 clips a shard);
* ``decoded``: ``stream(decode=True)`` (frames at 8 fps, 224 x 224, audio,
  images) over small shards of the same samples (``--decoded-per-shard`` clips
  each), so that 20 shards decode in a minute or two.

Each child reports its peak RSS (``VmHWM``) after the whole pass and its RSS
after the imports and the first sample (the baseline), so the growth due to
streaming is shown as well as the total. Goal: 20 shards within 1.2x of 1 shard.

    .venv/bin/python bench/memory_bench.py --size-gb 1 --out bench/out
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DEFAULT_OUT, Ratio, Result, machine_line, peak_rss_mb  # noqa: E402
from bench.gen_shards import ensure_release, release_options  # noqa: E402


def child(shards: list[str], decode: bool) -> dict[str, float]:
    """Stream ``shards`` once; RSS figures of this process."""
    from acav1m_hf.streaming import stream

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    samples, baseline = 0, None
    for _sample in stream(shards, decode=decode, fps=8.0, size=224):
        samples += 1
        if baseline is None:
            baseline = rss_mb()
    return {"samples": samples, "baseline_mb": baseline or rss_mb(), "peak_mb": peak_rss_mb(), "end_mb": rss_mb()}


def measure(shards: list[Path], decode: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", "--decode" if decode else "--raw", *map(str, shards)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> Result:
    from bench.read_bench import repack

    root = ensure_release(args.out, args.size_gb, args.clip_seconds, args.samples_per_shard)
    shards = sorted((root / "data").glob("train-*.tar"))
    result = Result("memory", params={k: str(v) for k, v in vars(args).items()})
    print(machine_line())
    many = min(args.shards, len(shards))
    if many < args.shards:
        result.notes.append(f"the release has {len(shards)} shards: compared 1 with {many}")
    small = repack(shards, args.out / "memory-subset", args.shards * args.decoded_per_shard, args.decoded_per_shard)
    for mode, pool in (("raw", shards), ("decoded", small)):
        if args.only and mode != args.only:
            continue
        n = min(many, len(pool))
        one, all_ = measure(pool[:1], mode == "decoded"), measure(pool[:n], mode == "decoded")
        size_one = pool[0].stat().st_size / 1e6
        for label, figures, count in (("1 shard", one, 1), (f"{n} shards", all_, n)):
            result.rows.append(
                {
                    "case": f"{mode}, {label}",
                    "samples": int(figures["samples"]),
                    "shard_mb": round(size_one, 1),
                    "shards": count,
                    "baseline_mb": round(figures["baseline_mb"], 1),
                    "peak_mb": round(figures["peak_mb"], 1),
                    "growth_mb": round(figures["peak_mb"] - figures["baseline_mb"], 1),
                }
            )
        value = all_["peak_mb"] / one["peak_mb"]
        # a ratio of peaks; a smaller one is better, so the goal reads "<= 1.2" (stored as 1.2 / ratio >= 1)
        result.ratios.append(
            Ratio(
                f"peak RSS {mode}: {n} shards / 1 shard (goal <= 1.20)", f"{mode}-{n}", f"{mode}-1", value, value, value
            )
        )
        result.figures[f"{mode}: flat within 1.2x"] = "MET" if value <= 1.2 else "MISSED"
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    release_options(p)
    p.add_argument("--shards", type=int, default=20)
    p.add_argument("--decoded-per-shard", type=int, default=4)
    p.add_argument("--only", choices=("raw", "decoded"), default=None)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.paths, args.decode)))
        return 0
    result = run(args)
    print("\n== memory: peak RSS (subprocess per case) ==")
    print(f"  {'case':<22} {'samples':>8} {'shard MB':>9} {'baseline MB':>12} {'peak MB':>8} {'growth MB':>10}")
    for row in result.rows:
        print(
            f"  {row['case']:<22} {row['samples']:8d} {row['shard_mb']:9.1f} {row['baseline_mb']:12.1f} "
            f"{row['peak_mb']:8.1f} {row['growth_mb']:10.1f}"
        )
    for r in result.ratios:
        print(f"  {r.label:<58} {r.median:6.2f}x  {'MET' if r.median <= 1.2 else 'MISSED'}")
    for note in result.notes:
        print(f"  note: {note}")
    result.save(args.out, args.only or "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Curation: clips/s of `curation.run.curate` (CPU profile) against decoding the same inputs alone.

Inputs (generated once and cached in ``OUT/curation-inputs/``): the five
bundled sample videos (``acav1m_hf/sample_data``: 320x240 to 1280x720, H.264,
MPEG-4, MP3/AAC, 1-14 s) and ``--synthetic`` synthetic videos of
``--input-seconds`` s at 640x360, 25 fps, H.264 + AAC 48 kHz
(`tests.synthetic`: a textured scene whose blob flashes with clicks in the
audio, so the aligner has something to align), listed in one manifest with
distinct video ids. Each case runs in this process, on one core:

* ``curate``: the whole pipeline, default `CurationConfig` (10-s clips, CPU
  profile: its models, the cues-v2 aligner, H.264/AAC/FLAC/JPEG/PNG
  encoders, shard writer, index, card, Croissant) into a fresh folder, but with
  ``keep_flagged`` (as ``acav1m demo``): the cpu profile's defaults reject
  every one of these clips (its instance map is uninformative), and a run that
  keeps none stops with an error, so clips failing a filter are kept, flagged,
  and every clip is encoded and written;
* ``curate-inline``: ``curate`` with ``decode_ahead = 0``: each batch decoded
  in the unit's thread, between model batches (``curate`` decodes 2 batches
  ahead, the default). For both, the share of the unit loop's wall time that
  the model side (models, encoding, writing: the consumer of the decoded
  batches) spent waiting for the next decoded batch (`waiting_ahead`);
  inline, that is all of the decoding;
* ``decode``: `curation.decode.decode_clips` over the same inputs: the
  pipeline's decoding stage alone (PyAV decode, RGB at <= 384 px, 16-kHz mono
  audio), i.e. *the limit* of the goal;
* ``decode-raw``: PyAV decoding every video and audio frame with no conversion
  (what the codecs alone cost);
* ``decode+align``: ``decode`` with the CPU profile's `SignalAligner` run on
  every clip: against ``decode``, what the aligner costs (the tests assert no
  time; this is where its speed is measured).

Clips/s counts every clip the decoder cut (kept or rejected by a filter).
Ray 1-vs-2 workers is measured in ``bench/ray_scale.py``.

    .venv/bin/python bench/curation_bench.py --out bench/out
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, Result, bench_parser, machine_line, paired_rounds, summary_rows  # noqa: E402

SAMPLE_DATA = REPO / "acav1m_hf" / "sample_data"


def make_inputs(
    folder: Path, synthetic: int, seconds: float, size: tuple[int, int] = (360, 640), bundled: bool = True
) -> Path:
    """A manifest of the bundled videos plus ``synthetic`` generated ones (cached by their parameters)."""
    manifest = folder / "manifest.csv"
    params = {"synthetic": synthetic, "seconds": seconds, "size": list(size), "bundled": bundled, "version": 1}
    marker = folder / "inputs.json"
    if manifest.exists() and marker.exists() and json.loads(marker.read_text()) == params:
        return manifest
    from tests.synthetic import make_clip, write_video_file

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with open(SAMPLE_DATA / "manifest.csv", newline="") as f:
        rows = [{**row, "path": str(SAMPLE_DATA / row["path"])} for row in csv.DictReader(f)] if bundled else []
    for k in range(synthetic):
        clip = make_clip(seconds=seconds, fps=25, seed=100 + k, size=size, position=(0.3 + (0.05 * k) % 0.4, 0.4))
        path = write_video_file(folder / f"synthetic_{k:03d}.mp4", clip)
        del clip
        rows.append(
            {
                "path": str(path),
                "video_id": f"bench_synthetic_{k:03d}",
                "text": "A bright blob flashes over a textured background in time with sharp clicks.",
                "license": "CC-BY-4.0",
            }
        )
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "video_id", "text", "license"])
        writer.writeheader()
        writer.writerows(rows)
    marker.write_text(json.dumps(params))
    return manifest


class WaitClock:
    """Seconds the unit loop spent in all, and waiting for its next decoded batch, summed over units."""

    def __init__(self) -> None:
        self.loop_s = self.wait_s = 0.0

    @property
    def share(self) -> float | None:
        return self.wait_s / self.loop_s if self.loop_s else None


@contextmanager
def waiting_ahead(clock: WaitClock) -> Iterator[None]:
    """Time, while in this block, every unit's `curation.decode_ahead.ahead` block and each wait for its next item.

    It wraps ``curation.unit.ahead``, the one place the unit loop takes its
    decoded batches from, so the curate run is otherwise the pipeline's own.
    """
    import curation.unit

    real = curation.unit.ahead

    @contextmanager
    def timed(source: Iterator[Any], depth: int) -> Iterator[Iterator[Any]]:
        start = time.perf_counter()
        with real(source, depth) as items:
            yield _timed_items(items, clock)
        clock.loop_s += time.perf_counter() - start

    curation.unit.ahead = timed
    try:
        yield
    finally:
        curation.unit.ahead = real


def _timed_items(items: Iterator[Any], clock: WaitClock) -> Iterator[Any]:
    while True:
        start = time.perf_counter()
        try:
            item = next(items)
        except StopIteration:
            return
        finally:
            clock.wait_s += time.perf_counter() - start
        yield item


def run_curate(manifest: Path, out: Path, clip_seconds: float, decode_ahead: int = 2) -> tuple[int, int]:
    from curation.config import CurationConfig
    from curation.run import curate

    shutil.rmtree(out, ignore_errors=True)
    config = CurationConfig(clip_seconds=clip_seconds, keep_flagged=True, decode_ahead=decode_ahead)
    clock = WaitClock()
    with waiting_ahead(clock):
        report = curate([str(manifest)], out, config, overwrite=True, log=lambda _m: None)
    run_curate.waits.setdefault(decode_ahead, []).append(clock.share)  # type: ignore[attr-defined]
    clips = report["counts"]["clips"]
    nbytes = sum(s.get("bytes", 0) for s in report.get("splits", {}).values())
    run_curate.last = clips  # type: ignore[attr-defined]
    shutil.rmtree(out, ignore_errors=True)
    return clips["total"], nbytes


run_curate.waits = {}  # type: ignore[attr-defined]


def one_input(manifest: Path) -> Path:
    """A manifest of the last input of ``manifest`` only (a synthetic one, if any): a short curate that loads the
    models."""
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    path = manifest.with_name("warm-up.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[-1]))
        writer.writeheader()
        writer.writerow(rows[-1])
    return path


def run_decode(manifest: Path, clip_seconds: float, align: bool = False) -> tuple[int, int]:
    """`decode_clips` over every input; with ``align``, `SignalAligner.analyse` on each clip as well."""
    from curation.config import CurationConfig
    from curation.decode import decode_clips
    from curation.inputs import read_inputs
    from curation.records import Rejected
    from curation.signal_aligner import SignalAligner

    config = CurationConfig(clip_seconds=clip_seconds)
    aligner = SignalAligner()
    items, _ = read_inputs([str(manifest)])
    clips = 0
    for item in items:
        try:
            for clip in decode_clips(item, config):
                if align:
                    aligner.analyse(clip, None)
                clips += 1
        except Rejected:
            pass
    return clips, sum(Path(i.path).stat().st_size for i in items)


def run_decode_raw(manifest: Path, clips_per_pass: int) -> tuple[int, int]:
    """Every frame of every input decoded by PyAV, nothing converted; counted as the clips the decoder cuts."""
    import av

    from curation.inputs import read_inputs

    items, _ = read_inputs([str(manifest)])
    for item in items:
        with av.open(item.path, metadata_errors="ignore") as container:
            streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
            for stream in streams:
                if stream.type == "video":
                    stream.thread_type = "AUTO"  # as curation.decode sets it
            for packet in container.demux(*streams):
                try:
                    packet.decode()
                except av.InvalidDataError:
                    continue
    return clips_per_pass, sum(Path(i.path).stat().st_size for i in items)


def run(args: argparse.Namespace) -> Result:
    print(machine_line())
    manifest = make_inputs(args.out / "curation-inputs", args.synthetic, args.input_seconds, bundled=args.bundled)
    result = Result("curation", params={k: str(v) for k, v in vars(args).items()})
    import av  # noqa: F401 - imported before any timing

    import curation.run  # noqa: F401

    clips_per_pass = run_decode(manifest, args.clip_seconds)[0]  # also warms the page cache for every case
    print(f"inputs: {manifest} ({clips_per_pass} clips of <= {args.clip_seconds:g} s)")
    scratch = args.out / "curation-scratch"
    cases = {
        "curate": lambda: run_curate(manifest, scratch, args.clip_seconds),
        "curate-inline": lambda: run_curate(manifest, scratch, args.clip_seconds, decode_ahead=0),
        "decode": lambda: run_decode(manifest, args.clip_seconds),
        "decode-raw": lambda: run_decode_raw(manifest, clips_per_pass),
        "decode+align": lambda: run_decode(manifest, args.clip_seconds, align=True),
    }
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only.split(",")}
    if any(name.startswith("curate") for name in cases):  # the models load on a run's first clip, in no timed case
        run_curate(one_input(manifest), scratch, args.clip_seconds)
        run_curate.waits.clear()  # type: ignore[attr-defined]
    runs = paired_rounds(cases, args.rounds)
    result.rows = summary_rows(runs)
    if "curate" in runs:
        last = getattr(run_curate, "last", {})
        result.figures["curate clips: total / kept / rejected"] = (
            f"{last.get('total')} / {last.get('kept')} / {last.get('rejected')}"
        )
    for depth, shares in sorted(run_curate.waits.items()):  # type: ignore[attr-defined]
        median = statistics.median(shares)
        label = f"model side waiting for decoded batches, share of the unit loop (decode_ahead {depth})"
        result.figures[label] = f"{median:.3f} (rounds {min(shares):.3f}-{max(shares):.3f})"
    result.compare(runs, "curate", "curate-inline", "curate, decode_ahead 2 / decode_ahead 0 (clips/s)")
    result.compare(runs, "curate", "decode", "curate (CPU profile) / decoding the inputs alone (clips/s)", 0.5)
    result.compare(runs, "curate", "decode-raw", "curate / PyAV decode of every frame, no conversion")
    result.compare(runs, "decode+align", "decode", "decode + signal aligner / decoding alone (clips/s)")
    result.compare(runs, "decode", "decode-raw", "decode_clips / PyAV decode, no conversion")
    result.notes.append("one process, local engine; Ray 1 vs 2 workers: bench/ray_scale.py")
    return result


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__, rounds=3)
    p.add_argument("--synthetic", type=int, default=6, help="synthetic 640x360 inputs besides the bundled ones")
    p.add_argument("--input-seconds", type=float, default=20.0)
    p.add_argument("--clip-seconds", type=float, default=10.0)
    p.add_argument("--no-bundled", dest="bundled", action="store_false", help="only the synthetic inputs")
    args = p.parse_args(argv)
    run(args).report(args.out, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

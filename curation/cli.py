"""The ``acav1m`` command: ``curate`` and ``demo`` here, and the release commands of `acav1m_hf.cli`.

The console script ``acav1m`` (pyproject.toml) runs `main`; ``python -m curation.cli`` is the same command.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from acav1m_hf.cli import add_release_commands, run
from curation.config import CurationConfig
from curation.manifest import DEFAULT_URL_TEMPLATE, check_template
from curation.segments import FetchOptions


def _add_override_arguments(
    p: argparse.ArgumentParser, *, profile: str, device: str, keep_flagged: str | None = None
) -> None:
    """The config settings ``curate`` and ``extend`` take on the command line (read back by `_overrides`)."""
    p.add_argument("--profile", help=profile)
    p.add_argument("--device", help=device)
    p.add_argument("--clip-seconds", type=float)
    p.add_argument("--shard-max-samples", type=int)
    p.add_argument("--shard-max-bytes", type=int)
    p.add_argument("--keep-flagged", action="store_true", help=keep_flagged)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The config settings ``curate`` and ``extend`` take on the command line (None: not given)."""
    return {
        "profile": args.profile,
        "device": args.device,
        "clip_seconds": args.clip_seconds,
        "shard_max_samples": args.shard_max_samples,
        "shard_max_bytes": args.shard_max_bytes,
        "keep_flagged": True if args.keep_flagged else None,
    }


def _curate(args: argparse.Namespace) -> int:
    from curation.engines import make_engine
    from curation.run import curate

    overrides = _overrides(args)
    config = (
        CurationConfig.from_file(args.config, **overrides)
        if args.config
        else CurationConfig().with_overrides(**overrides)
    )
    engine = make_engine(args.engine, address=args.ray_address, workers=args.workers)
    report = curate(
        args.inputs,
        args.output,
        config,
        engine=engine,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        fetch=_fetch_options(args),
        url_template=check_template(args.url_template),
    )
    clips = report["counts"]["clips"]
    print(f"{args.output}: {clips['kept']} clips kept, {clips['rejected']} rejected; see report.json and inputs.jsonl")
    failed, retryable = report.get("failed_units", []), report.get("retryable", {})
    if failed or any(retryable.values()):
        print(
            f"{args.output}: {len(failed)} unit(s) failed, {retryable.get('inputs', 0)} input(s) and "
            f"{retryable.get('clips', 0)} clip(s) had transient failures; rerun with --retry-failed to redo them",
            file=sys.stderr,
        )
    return 0


def _extend(args: argparse.Namespace) -> int:
    from curation.engines import make_engine
    from curation.extend import extend, recorded_config

    overrides = _overrides(args)
    base = CurationConfig.from_file(args.config) if args.config else recorded_config(args.release)
    result = extend(
        args.release,
        args.inputs,
        base.with_overrides(**overrides),
        date=args.date,
        engine=make_engine(args.engine, address=args.ray_address, workers=args.workers),
        fetch=_fetch_options(args),
        url_template=check_template(args.url_template),
    )
    if result.recovered:
        print(f"{args.release}: an interrupted edit was {result.recovered}")
    if result.extension is None:
        print(f"{args.release}: every input is already in the release; nothing to do")
    else:
        print(f"{args.release}: version {result.version}: {result.extension.changelog_text()}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from curation.fetch_run import FETCHED, fetch_inputs

    counts = fetch_inputs(
        args.inputs, args.output, args.max_offset, _fetch_options(args), check_template(args.url_template)
    )
    print(f"{args.output}: {dict(sorted(counts.items()))}; one line per input in {args.output}/{FETCHED}")
    return 0


def _fetch_options(args: argparse.Namespace) -> FetchOptions:
    given = {
        "cache_dir": getattr(args, "cache_dir", None),
        "cache_max_bytes": args.cache_max_bytes,
        "cookies": args.cookies,
        "proxy": args.proxy,
        "per_host": args.per_host,
        "interval": args.fetch_interval,
        "concurrency": args.fetch_concurrency,
        "max_height": args.max_height,
    }
    return FetchOptions(**{name: value for name, value in given.items() if value is not None})


def _add_fetch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url-template",
        default=DEFAULT_URL_TEMPLATE,
        help="URL of a manifest row's videoID (default %(default)s); {videoID} is replaced by the id",
    )
    p.add_argument("--cache-max-bytes", type=int, help="size cap of the fetch cache (default 50 GiB)")
    p.add_argument("--cookies", help="cookies.txt passed to yt-dlp (e.g. when a site asks to confirm you are no bot)")
    p.add_argument("--proxy", help="proxy URL passed to yt-dlp")
    p.add_argument(
        "--per-host", type=int, help="fetches to one host at once, across the processes sharing the cache (default 2)"
    )
    p.add_argument("--fetch-interval", type=float, help="seconds between two fetches' starts to one host (default 1)")
    p.add_argument("--fetch-concurrency", type=int, help="fetches run ahead of decoding (default 4)")
    p.add_argument("--max-height", type=int, help="resolution cap of the fetched video, pixels (default 480)")


def _evaluate_alignment(args: argparse.Namespace) -> int:
    from curation.config import CurationConfig
    from curation.evaluate import evaluate

    overrides = {"profile": args.profile, "device": args.device, "clip_seconds": args.clip_seconds}
    config = (
        CurationConfig.from_file(args.config, **overrides)
        if args.config
        else CurationConfig().with_overrides(**overrides)
    )
    if args.fit_calibration and Path(args.fit_calibration).exists() and not args.overwrite:
        raise ValueError(f"{args.fit_calibration}: already exists; pass --overwrite to replace it")
    report = evaluate(args.clips, args.output, config, args.offsets, args.kinds, overwrite=args.overwrite)
    print(
        f"{args.output}/report.md and report.json: {report.figures['all'].clips} in-sync clips, "
        f"{len(report.variants)} variants, {len(report.excluded)} left out (listed there)"
    )
    if args.fit_calibration:
        from curation.calibration_fit import fit_calibration

        calibration = fit_calibration(report)
        calibration.write(args.fit_calibration)
        fit = calibration.provenance["fits"]["instance"]
        print(
            f"{args.fit_calibration}: calibration of {calibration.aligner} from {fit['matched']} in-sync and "
            f"{fit['swapped']} swapped clips ({fit['recordings']} recordings); rerun without --fit-calibration "
            "to measure the calibrated scores"
        )
        for cue, fits in sorted(calibration.provenance.get("cues", {}).items()):
            maps = [f"{name} {'informative' if f['informative'] else 'uninformative'}" for name, f in fits.items()]
            print(f"  cue {cue}: {', '.join(maps) or 'no map (matched or swapped clips missing)'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from datasets import load_dataset

    from acav1m_hf.info import describe_release
    from acav1m_hf.validate import validate_release
    from curation.config import DEMO_CONFIG
    from curation.run import curate

    out = Path(args.output)
    manifest = resources.files("acav1m_hf") / "sample_data" / "manifest.csv"
    print(f"1/3 curating the bundled sample clips ({manifest}) into {out}/ (cpu profile, no GPU, no network)")
    print("    clips that fail a filter are kept and marked alignment.passed=false, so that you can inspect them;")
    print("    a real run rejects them (omit --keep-flagged)")
    curate([str(manifest)], out, DEMO_CONFIG.with_overrides(clip_seconds=args.clip_seconds))
    print(describe_release(out))
    print(f"2/3 validating {out}/")
    errors = validate_release(out)
    if errors:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
        return 1
    print("    valid: checksums, schema of every sample, index, card and Croissant agree")
    print(f'3/3 loading it back: load_dataset("{out.name}") from {out.parent.resolve()}')
    cwd = os.getcwd()
    os.chdir(out.parent.resolve())
    try:
        dataset = load_dataset(out.name)
    finally:
        os.chdir(cwd)
    print(dataset)
    split = next(iter(dataset))
    sample = dataset[split][0]
    audio = sample["flac"]["array"]
    frames = sample["mp4"].get_frames_in_range(0, 4)
    print(f"    {split}[0] {sample['__key__']}: caption {sample['txt']!r}")
    print(
        f"    audio {audio.shape} at {sample['flac']['sampling_rate']} Hz, first video frames {tuple(frames.data.shape)}"
    )
    scores = sample["json"]["alignment"]
    print(
        f"    instance {scores['instance']['score']}, temporal {scores['temporal']['score']}, sync {scores['sync']['offset']} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acav1m", description="Curate, validate, describe and load ACAV-1M releases.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("curate", help="curate videos, folders or manifests into a release folder")
    p.add_argument("inputs", nargs="+", help="video files, folders (recursive) or manifests (.csv, .jsonl, .parquet)")
    p.add_argument("-o", "--output", required=True, help="release folder to write")
    p.add_argument("--config", help="JSON or TOML file of CurationConfig settings")
    _add_override_arguments(
        p,
        profile="model profile: cpu (default) or paper",
        device="torch device for model profiles, e.g. cuda",
        keep_flagged="keep clips that fail a filter, marked passed=false",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a different run already in the output folder")
    p.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="local (default: this process) or ray (a cluster)"
    )
    p.add_argument("--ray-address", help="join this Ray cluster (e.g. ray://head:10001 or auto); default: start one")
    p.add_argument("--workers", type=int, help="units processed at once (ray: CPU tasks in flight; default all CPUs)")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="redo units that failed and clips or inputs that failed for transient reasons (model or I/O errors)",
    )
    p.add_argument("--cache-dir", help="fetch cache of segments fetched with yt-dlp (default ~/.cache/acav1m/fetch)")
    _add_fetch_arguments(p)
    p.set_defaults(run=_curate, resumable=True)

    p = commands.add_parser("extend", help="curate new inputs into new shards of a release, as a new minor version")
    p.add_argument("release", help="the release folder to extend")
    p.add_argument("inputs", nargs="+", help="video files, folders (recursive) or manifests (.csv, .jsonl, .parquet)")
    p.add_argument("--config", help="settings file (default: the release's own settings, from its report.json)")
    _add_override_arguments(
        p, profile="model profile; must be the release's", device="torch device; must be the release's"
    )
    p.add_argument("--date", help="the date recorded (YYYY-MM-DD; default: today, UTC)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address")
    p.add_argument("--workers", type=int)
    p.add_argument("--cache-dir", help="fetch cache of segments fetched with yt-dlp (default ~/.cache/acav1m/fetch)")
    _add_fetch_arguments(p)
    p.set_defaults(run=_extend, resumable=True)

    p = commands.add_parser("fetch", help="fetch the segments a manifest names into a cache, without curating")
    p.add_argument("inputs", nargs="+", help="manifests (.csv, .jsonl, .parquet), video URLs")
    p.add_argument("-o", "--output", dest="output", required=True, help="the fetch cache folder (curate --cache-dir)")
    p.add_argument("--max-offset", type=float, default=CurationConfig().max_offset, help="margin each side, seconds")
    _add_fetch_arguments(p)
    p.set_defaults(run=_fetch)

    p = commands.add_parser(
        "evaluate-alignment",
        help="measure a profile's alignment filters on real in-sync clips and shifted and swapped variants of them",
    )
    p.add_argument("clips", nargs="+", help="real clips whose audio is in sync: files, folders or manifests")
    p.add_argument("-o", "--output", required=True, help="folder for report.json and report.md")
    p.add_argument("--profile", help="model profile: cpu (default) or paper")
    p.add_argument("--config", help="JSON or TOML file of CurationConfig settings (thresholds, clip length...)")
    p.add_argument("--device", help="torch device for model profiles, e.g. cuda")
    p.add_argument("--clip-seconds", type=float)
    p.add_argument(
        "--offsets",
        type=float,
        nargs="+",
        help="audio delays to make, seconds, within ±max_offset (default: -0.8 -0.4 -0.12 0.2 0.52 0.96)",
    )
    p.add_argument("--kinds", help="CSV (path,kind) or JSON list naming each clip's content kind; others: unknown")
    p.add_argument(
        "--fit-calibration",
        metavar="FILE",
        help="also fit the aligner's calibration (raw -> P(matched)) on the in-sync and swapped clips and write it to "
        "FILE, e.g. curation/calibration/<aligner>.json (docs/alignment.md)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a report (and calibration file) already in the output"
    )
    p.set_defaults(run=_evaluate_alignment)

    p = commands.add_parser("demo", help="curate the bundled sample clips into ./acav1m, validate and load it back")
    p.add_argument("-o", "--output", default="acav1m")
    p.add_argument("--clip-seconds", type=float)
    p.set_defaults(run=_demo)

    add_release_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

"""The ``acav1m`` command: curate, validate, describe and load ACAV-1M releases."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from acav1m_hf.schema import MAX_MEMBER_BYTES


def _curate(args: argparse.Namespace) -> int:
    from curation.config import CurationConfig
    from curation.run import curate

    overrides = {
        "profile": args.profile,
        "device": args.device,
        "clip_seconds": args.clip_seconds,
        "shard_max_samples": args.shard_max_samples,
        "shard_max_bytes": args.shard_max_bytes,
        "keep_flagged": True if args.keep_flagged else None,
    }
    config = (
        CurationConfig.from_file(args.config, **overrides)
        if args.config
        else CurationConfig().with_overrides(**overrides)
    )
    from curation.engines import make_engine

    engine = make_engine(args.engine, address=args.ray_address, workers=args.workers)
    report = curate(
        args.inputs, args.output, config, engine=engine, overwrite=args.overwrite, retry_failed=args.retry_failed
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


def _validate(args: argparse.Namespace) -> int:
    from acav1m_hf.validate import validate_release

    errors = validate_release(args.release, media=args.media, max_member_bytes=args.max_member_bytes)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"{args.release}: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.release}: valid")
    return 0


def _croissant(args: argparse.Namespace) -> int:
    from acav1m_hf.croissant import write_croissant

    print(write_croissant(Path(args.release)))
    return 0


def _info(args: argparse.Namespace) -> int:
    from acav1m_hf.info import describe_release

    print(describe_release(args.release))
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


def _site(args: argparse.Namespace) -> int:
    from acav1m_hf.site import build_site, serve

    site = build_site(Path(args.release), Path(args.output), max_media=args.max_media)
    print(f"site written to {site}")
    if args.serve:
        serve(site, port=args.port)
    return 0


def _push(args: argparse.Namespace) -> int:
    from acav1m_hf.hub import push_release

    print(push_release(Path(args.release), args.repo_id, private=args.private))
    return 0


def _download(args: argparse.Namespace) -> int:
    from acav1m_hf.hub import download_release

    print(download_release(args.repo_id, Path(args.output), revision=args.revision))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acav1m", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("curate", help="curate videos, folders or manifests into a release folder")
    p.add_argument("inputs", nargs="+", help="video files, folders (recursive) or manifests (.csv, .jsonl, .parquet)")
    p.add_argument("-o", "--output", required=True, help="release folder to write")
    p.add_argument("--config", help="JSON or TOML file of CurationConfig settings")
    p.add_argument("--profile", help="model profile: cpu (default) or paper")
    p.add_argument("--device", help="torch device for model profiles, e.g. cuda")
    p.add_argument("--clip-seconds", type=float)
    p.add_argument("--shard-max-samples", type=int)
    p.add_argument("--shard-max-bytes", type=int)
    p.add_argument("--keep-flagged", action="store_true", help="keep clips that fail a filter, marked passed=false")
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
    p.set_defaults(run=_curate)

    for name, run, text in (
        ("validate", _validate, "check checksums, every sample's schema, index, card and Croissant"),
        ("croissant", _croissant, "(re)write OUT/croissant.json"),
        ("info", _info, "counts, hours, pass rates and score histograms"),
    ):
        p = commands.add_parser(name, help=text)
        p.add_argument("release", help="release folder")
        p.set_defaults(run=run)
    validate = commands.choices["validate"]
    validate.add_argument("--media", action="store_true", help="also decode every mp4, flac, jpg and mask.png member")
    validate.add_argument(
        "--max-member-bytes", type=int, default=MAX_MEMBER_BYTES, help="refuse a tar member larger than this"
    )

    p = commands.add_parser("demo", help="curate the bundled sample clips into ./acav1m, validate and load it back")
    p.add_argument("-o", "--output", default="acav1m")
    p.add_argument("--clip-seconds", type=float)
    p.set_defaults(run=_demo)

    p = commands.add_parser("site", help="build the static dataset website")
    p.add_argument("release")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--max-media", type=int, default=200, help="clips whose video is copied into the site")
    p.add_argument("--serve", action="store_true", help="then serve it on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(run=_site)

    p = commands.add_parser("push", help="upload a release folder to a Hub dataset repository")
    p.add_argument("release")
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")
    p.set_defaults(run=_push)

    p = commands.add_parser("download", help="download a release from a Hub dataset repository")
    p.add_argument("repo_id")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--revision")
    p.set_defaults(run=_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's 128 + SIGINT; a curate rerun resumes
        resume = "; rerun the same command to resume" if args.command == "curate" else ""
        print(f"acav1m {args.command}: interrupted{resume}", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as exc:  # bad input, a busy or full output folder, ...
        print(f"acav1m {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

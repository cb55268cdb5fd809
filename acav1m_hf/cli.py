"""The release commands of ``acav1m``: validate, describe (Croissant, info, site) and publish ACAV-1M releases.

The ``acav1m`` command itself is `curation.cli`, which adds ``curate`` and ``demo`` to these; this package never
imports ``curation`` (curation depends on it, not the other way round).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from acav1m_hf.schema import MAX_MEMBER_BYTES


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


def _remove(args: argparse.Namespace) -> int:
    from acav1m_hf.maintain.remove import read_ids_file, remove_videos

    ids = list(args.video_id or []) + (read_ids_file(args.ids_file) if args.ids_file else [])
    result = remove_videos(Path(args.release), ids, args.reason, date=args.date)
    if result.recovered:
        print(f"{args.release}: an interrupted edit was {result.recovered}")
    if result.version is None:
        print(f"{args.release}: {', '.join(sorted(set(ids)))} already removed; nothing to do")
    else:
        print(
            f"{args.release}: version {result.version}: removed {result.clips} clip(s); shards rewritten: "
            f"{', '.join(result.rewritten) or 'none'}; deleted: {', '.join(result.deleted) or 'none'}"
        )
    return 0


def _subset(args: argparse.Namespace) -> int:
    from acav1m_hf.maintain.subset import write_subset

    facts = write_subset(Path(args.release), Path(args.output), args.where)
    print(f"{args.output}: {facts.clips} clip(s) in {len(facts.shards)} shard(s)")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from acav1m_hf.maintain.diff import diff_releases

    print("\n".join(diff_releases(Path(args.old), Path(args.new)).lines()))
    return 0


def add_release_commands(commands: Any) -> None:
    """Add the commands that read or publish a finished release to ``commands`` (an ``add_subparsers`` result)."""
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

    p = commands.add_parser("remove", help="remove every clip of some videos (a takedown) as a new minor version")
    p.add_argument("release")
    ids = p.add_mutually_exclusive_group(required=True)
    ids.add_argument("--video-id", nargs="+", help="source.video_id of the videos to remove")
    ids.add_argument("--ids-file", help="a file of video ids, one per line")
    p.add_argument("--reason", default="removal requested", help="recorded in CHANGELOG.md and removals.jsonl")
    p.add_argument("--date", help="the date recorded (YYYY-MM-DD; default: today, UTC)")
    p.set_defaults(run=_remove)

    p = commands.add_parser("subset", help="write a new release of the clips whose index row matches --where")
    p.add_argument("release")
    p.add_argument("-o", "--output", required=True, help="the new release folder (must not exist)")
    p.add_argument("--where", required=True, help='SQL over the index columns, e.g. "\\"clip.duration\\" > 2"')
    p.set_defaults(run=_subset)

    p = commands.add_parser("diff", help="the clips added, removed and changed from release OLD to NEW")
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(run=_diff)

    p = commands.add_parser("download", help="download a release from a Hub dataset repository")
    p.add_argument("repo_id")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--revision")
    p.set_defaults(run=_download)


def build_parser() -> argparse.ArgumentParser:
    """The release commands alone; the ``acav1m`` command (`curation.cli`) adds ``curate`` and ``demo``."""
    parser = argparse.ArgumentParser(
        prog="acav1m", description=__doc__, epilog="curate and demo: the acav1m command (python -m curation.cli)"
    )
    add_release_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run its command; an error or Ctrl-C is one line on stderr and an exit status, no traceback.

    A command whose parser sets ``resumable`` (``curate``) says on Ctrl-C that rerunning it resumes.
    """
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's 128 + SIGINT
        resume = "; rerun the same command to resume" if getattr(args, "resumable", False) else ""
        print(f"acav1m {args.command}: interrupted{resume}", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as exc:  # bad input, a busy or full output folder, ...
        print(f"acav1m {args.command}: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

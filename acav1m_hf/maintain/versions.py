"""A release's version and changelog: each change bumps the version and adds one ``CHANGELOG.md`` entry.

The version is ``report.json``'s ``release_version`` (`acav1m_hf.facts.FIRST_VERSION` until the first change); the
card's YAML and the Croissant show it. A removal or an extension is a minor change (1.0.0 to 1.1.0); a change of
the schema (`acav1m_hf.schema.SCHEMA_VERSION`) is a major one (1.3.0 to 2.0.0): `next_version`.

A maintenance command never makes that major change itself: a release written under another schema than this
code's is refused (`check_schema`), since its shards keep their bytes and the card, Croissant and index this code
renders would describe them with the wrong fields. Such a release is curated again with this code, or maintained
with the acav1m that wrote it; the refusal names the version a release under the new schema would take.
``CHANGELOG.md`` holds one ``## {version} ({date})`` section per version, newest first; `entry` reads one back,
the commit message `acav1m_hf.hub.push_release` uses for that version.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acav1m_hf.facts import FIRST_VERSION
from acav1m_hf.schema import SCHEMA_VERSION

CHANGELOG = "CHANGELOG.md"
HEADER = "# Changelog\n\nEvery version of this release, newest first.\n"
_SECTION = re.compile(r"^## (?P<version>\d+\.\d+\.\d+) \(", re.MULTILINE)
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _parts(version: str) -> tuple[int, int, int]:
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"release version {version!r} is not MAJOR.MINOR.PATCH")
    return int(match[1]), int(match[2]), int(match[3])


def bump_minor(version: str) -> str:
    """The next minor version: ``1.0.0`` becomes ``1.1.0``; anything but ``MAJOR.MINOR.PATCH`` is refused."""
    major, minor, _ = _parts(version)
    return f"{major}.{minor + 1}.0"


def next_version(version: str, old_schema: str, new_schema: str) -> str:
    """The version after ``version`` for a change from schema ``old_schema`` to ``new_schema``: the next major
    (``1.3.0`` to ``2.0.0``) when they differ, else the next minor."""
    if old_schema == new_schema:
        return bump_minor(version)
    return f"{_parts(version)[0] + 1}.0.0"


def check_schema(root: Path, report: Mapping[str, Any], command: str) -> None:
    """Refuse ``command`` on the release ``root`` (its ``report.json``: ``report``) when this code writes another
    schema than the release's: a `ValueError` naming both, the acav1m that wrote it and the next major version."""
    found = str(report.get("schema"))
    if found == SCHEMA_VERSION:
        return
    version = str(report.get("release_version", FIRST_VERSION))
    raise ValueError(
        f"{root}: written under schema {found} (acav1m {report.get('acav1m_version')}), and this acav1m writes "
        f"schema {SCHEMA_VERSION}: {command} would describe its shards with the wrong fields. Run {command} with "
        f"the acav1m that wrote it, or curate the inputs again with this one (a schema change: release version "
        f"{next_version(version, found, SCHEMA_VERSION)})"
    )


def today() -> str:
    """Today's date in UTC (ISO 8601), the default date of a change."""
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def check_date(date: str) -> str:
    """``date`` if it is an ISO date (``2025-01-31``), else a `ValueError` naming it."""
    try:
        datetime.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"date {date!r} is not an ISO date (YYYY-MM-DD)") from None
    return date


def add_entry(changelog: str | None, version: str, date: str, text: str) -> str:
    """``changelog`` (None: no file yet) with a new section for ``version`` on top of the older ones."""
    body = (changelog or HEADER).rstrip("\n")
    first = _SECTION.search(body)
    head, older = (body[: first.start()].rstrip("\n"), body[first.start() :]) if first else (body, "")
    section = f"## {version} ({date})\n\n{text.strip()}\n"
    return f"{head}\n\n{section}" + (f"\n{older}\n" if older else "")


def entry(changelog: str | None, version: str) -> str | None:
    """The text of ``version``'s section (without its heading), or None when the changelog has none."""
    if changelog is None:
        return None
    sections = list(_SECTION.finditer(changelog))
    for n, section in enumerate(sections):
        if section["version"] == version:
            end = sections[n + 1].start() if n + 1 < len(sections) else len(changelog)
            heading_end = changelog.index("\n", section.start())
            return changelog[heading_end:end].strip()
    return None


__all__ = [
    "CHANGELOG",
    "FIRST_VERSION",
    "add_entry",
    "bump_minor",
    "check_date",
    "check_schema",
    "entry",
    "next_version",
    "today",
]

"""What the pages read from the release besides its index: the card, ``report.json`` and the Croissant record.

Each reader forgives a missing or malformed file (an empty value), because a site of a half-described release is
still worth having; the index and the shards, which the site cannot do without, are read by `index` and `media`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from acav1m_hf.release import CARD, CROISSANT


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; empty when the file is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_card(root: Path) -> tuple[dict[str, Any], str]:
    """YAML front matter and markdown body of the dataset card (both empty when there is none)."""
    try:
        text = (root / CARD).read_text(encoding="utf-8")
    except OSError:
        return {}, ""
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if not match:
        return {}, text
    try:
        import yaml

        meta = yaml.safe_load(match.group(1))
    except Exception:  # a malformed header must not stop the site: show the body anyway
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def citation(body: str) -> str | None:
    """The first BibTeX block of the card, if it has one."""
    match = re.search(r"```(?:bibtex|bib)?\s*\n(\s*@\w+\s*\{.*?)```", body, re.S | re.I)
    return match.group(1).strip() if match else None


def croissant_record_set(root: Path) -> str:
    """The first record set of the release's Croissant file, for the ``mlcroissant`` example ("clips" if none)."""
    data = read_json(root / CROISSANT)
    for record_set in data.get("recordSet", []) if isinstance(data.get("recordSet"), list) else []:
        if isinstance(record_set, dict) and isinstance(record_set.get("@id") or record_set.get("name"), str):
            return str(record_set.get("@id") or record_set.get("name"))
    return "clips"

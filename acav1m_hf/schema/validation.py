"""The validation of every sample that curation writes and that ``acav1m validate`` reads back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from acav1m_hf.schema.fields import KEY_PATTERN, METADATA, Field
from acav1m_hf.schema.members import MEMBER_EXTENSIONS, MEMBERS


def _check_scalar(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int64":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _validate(field: Field, value: Any, path: str, errors: list[str]) -> None:
    if value is None:
        if field.required:
            errors.append(f"{path}: required, got null")
        return
    if field.kind == "struct":
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        names = {c.name for c in field.children}
        errors.extend(f"{path}.{extra}: not in the schema" for extra in sorted(set(value) - names))
        for child in field.children:
            if child.name not in value:
                errors.append(f"{path}.{child.name}: missing")
            else:
                _validate(child, value[child.name], f"{path}.{child.name}", errors)
        if field.reason_for is not None:
            missing = value.get(field.reason_for) is None
            has_reason = value.get("reason") is not None
            if missing and not has_reason:
                errors.append(f"{path}.{field.reason_for}: null without a reason")
            if not missing and has_reason:
                errors.append(f"{path}.reason: set although {field.reason_for} is present")
        return
    items = value if field.kind == "list" else [value]
    kind = field.item if field.kind == "list" else field.kind
    if field.kind == "list" and not isinstance(value, list):
        errors.append(f"{path}: expected a list, got {type(value).__name__}")
        return
    for item in items:
        if not _check_scalar(kind or "string", item):
            errors.append(f"{path}: expected {kind}, got {item!r}")
        elif field.unit_interval and not 0.0 <= item <= 1.0:
            errors.append(f"{path}: {item!r} is outside [0, 1]")
        elif field.choices and item not in field.choices:
            errors.append(f"{path}: {item!r} is not one of {', '.join(field.choices)}")


def validate_metadata(metadata: Any) -> list[str]:
    """Every way ``metadata`` departs from `METADATA`; empty when it conforms."""
    errors: list[str] = []
    _validate(METADATA, metadata, "json", errors)
    if not errors:
        if not KEY_PATTERN.match(metadata["key"]):
            errors.append(f"json.key: {metadata['key']!r} must match {KEY_PATTERN.pattern}")
        loc = metadata["labels"]["localization"]
        if loc["peak"] is not None and len(loc["peak"]) != 2:
            errors.append("json.labels.localization.peak: expected [x, y]")
        if loc["box"] is not None and len(loc["box"]) != 4:
            errors.append("json.labels.localization.box: expected [x0, y0, x1, y1]")
    return errors


def validate_sample(key: str, members: Mapping[str, bytes]) -> list[str]:
    """Check one sample as read from a shard: its members, its metadata, and that they agree."""
    errors = [f"{key}.{ext}: required member missing" for ext in _required_members() if ext not in members]
    errors += [f"{key}.{ext}: not a member of the schema" for ext in sorted(set(members) - set(MEMBER_EXTENSIONS))]
    if "json" not in members:
        return errors
    try:
        metadata = json.loads(members["json"])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [*errors, f"{key}.json: not valid JSON ({exc})"]
    errors += [f"{key}: {e}" for e in validate_metadata(metadata)]
    if errors:
        return errors
    if metadata["key"] != key:
        errors.append(f"{key}.json: key field is {metadata['key']!r}")
    caption = metadata["caption"]["text"]
    if (caption is None) != ("txt" not in members):
        errors.append(
            f"{key}.txt: present={('txt' in members)} but caption.text is {'null' if caption is None else 'set'}"
        )
    elif caption is not None and members["txt"].decode("utf-8", "replace") != caption:
        errors.append(f"{key}.txt: differs from caption.text")
    for ext, flag in (("mask.png", metadata["labels"]["mask"]["present"]), ("npy", metadata["embeddings"]["present"])):
        if flag != (ext in members):
            errors.append(f"{key}.{ext}: member present={ext in members} but metadata says {flag}")
    return errors


def _required_members() -> list[str]:
    return [m.extension for m in MEMBERS if m.required]

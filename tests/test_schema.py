"""The one schema: HF features, the Parquet index, Croissant fields and validation all derive from it and agree."""

from __future__ import annotations

import copy
import json

import pytest
from datasets import Audio, Image, Video

from acav1m_hf import release as layout
from acav1m_hf.schema import (
    MEMBER_EXTENSIONS,
    arrow_schema,
    column_name,
    hf_features,
    index_columns,
    iter_leaves,
    validate_metadata,
    validate_sample,
)
from acav1m_hf.validate import iter_samples


def _hf_leaves(feature, prefix=()):
    if isinstance(feature, dict):
        for name, child in feature.items():
            yield from _hf_leaves(child, (*prefix, name))
    else:
        yield prefix, feature


def test_hf_features_mirror_the_schema() -> None:
    features = hf_features()
    assert [k for k in features if not k.startswith("__")] == list(MEMBER_EXTENSIONS)
    assert isinstance(features["mp4"], Video) and isinstance(features["flac"], Audio)
    assert isinstance(features["jpg"], Image) and isinstance(features["mask.png"], Image)
    assert [p for p, _ in _hf_leaves(features["json"])] == [p for p, _ in iter_leaves()]


def test_index_columns_are_the_schema_leaves() -> None:
    names = arrow_schema().names
    assert names[:2] == ["key", "shard"]
    assert names[2:] == [column_name(p) for p, _ in iter_leaves() if p != ("key",)]
    assert len(set(names)) == len(names) == len(index_columns()) + 1


@pytest.fixture(scope="module")
def one_sample(release):
    shard = next(iter(layout.list_shards(release).values()))[0]
    return next(iter_samples(shard))


def test_written_samples_validate(one_sample) -> None:
    key, members = one_sample
    assert validate_sample(key, members) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["alignment"]["instance"].update(score=1.5), "outside [0, 1]"),
        (lambda m: m["alignment"]["instance"].update(score=None, reason=None), "null without a reason"),
        (lambda m: m["clip"].update(fps=None), "required, got null"),
        (lambda m: m.update(split="dev"), "not one of"),
        (lambda m: m.update(extra=1), "not in the schema"),
        (lambda m: m["source"].pop("video_id"), "missing"),
        (lambda m: m.update(key="a.b"), "must match"),
        (lambda m: m["clip"].update(width="384"), "expected int64"),
        (lambda m: m["labels"]["localization"].update(box=[0.1, 0.2]), "expected [x0, y0, x1, y1]"),
    ],
)
def test_validation_rejects_each_kind_of_bad_metadata(one_sample, change, message) -> None:
    _, members = one_sample
    metadata = copy.deepcopy(json.loads(members["json"]))
    change(metadata)
    assert any(message in e for e in validate_metadata(metadata)), validate_metadata(metadata)


def test_validation_checks_members_against_metadata(one_sample) -> None:
    key, members = one_sample
    assert any(
        "required member missing" in e for e in validate_sample(key, {k: v for k, v in members.items() if k != "mp4"})
    )
    assert any("not a member" in e for e in validate_sample(key, {**members, "pyd": b"x"}))
    metadata = json.loads(members["json"])
    if metadata["caption"]["text"] is not None:
        assert any("differs" in e for e in validate_sample(key, {**members, "txt": b"another caption"}))
    assert any("other" in e or "key field" in e for e in validate_sample("other", members))

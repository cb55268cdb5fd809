"""`acav1m_hf.loading`: `load` over datasets' packaged webdataset builder, and the task views.

The session release (real curation, CPU profile) has no class labels or
embeddings and a mask on every clip, so the views are tested on a variant of
it whose labels are rewritten from a known plan (`PLAN`); every rewritten
sample still passes `validate_sample`.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from acav1m_hf.loading import TASKS, TaskView, _meta, load, task_view
from acav1m_hf.release import list_shards
from acav1m_hf.schema import hf_features, validate_sample
from tests.test_streaming import read_raw


def plan(i: int) -> dict[str, bool]:
    """Which labels clip ``i`` (in key order) gets: the ground truth of the view tests."""
    return {
        "category": i % 2 == 0,
        "localization": i % 4 != 3,
        "mask": i % 3 != 0,
        "npy": i % 4 == 1,
        "caption": i % 5 != 2,
        "sync": i % 3 != 1,
    }


def _mask_like(jpg: bytes) -> bytes:
    """A mask the size of the keyframe, for clips that curation left without one."""
    with Image.open(io.BytesIO(jpg)) as image:
        mask = np.zeros((image.height, image.width), np.uint8)
    mask[: mask.shape[0] // 2, : mask.shape[1] // 2] = 255
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG")
    return buf.getvalue()


def rewrite(i: int, sample: dict[str, bytes]) -> dict[str, bytes]:
    p = plan(i)
    meta = json.loads(sample["json"])
    out = {k: v for k, v in sample.items() if k not in ("mask.png", "npy", "txt")}
    labels = meta["labels"]
    labels["category"] = (
        {"label": f"class{i % 3}", "id": i % 3, "score": 0.75, "reason": None}
        if p["category"]
        else {"label": None, "id": None, "score": None, "reason": "test: no class"}
    )
    labels["localization"] = (
        {"peak": [0.5, 0.25], "box": [0.25, 0.0, 0.75, 0.5], "reason": None}
        if p["localization"]
        else {"peak": None, "box": None, "reason": "test: no peak"}
    )
    labels["mask"] = {"present": p["mask"], "reason": None if p["mask"] else "test: no mask"}
    if p["mask"]:
        out["mask.png"] = sample.get("mask.png") or _mask_like(sample["jpg"])
    meta["embeddings"] = (
        {"present": True, "rows": ["audio", "visual"], "model": "test", "reason": None}
        if p["npy"]
        else {"present": False, "rows": None, "model": None, "reason": "test: none"}
    )
    if p["npy"]:
        buf = io.BytesIO()
        np.save(buf, np.full((2, 4), i, np.float32))
        out["npy"] = buf.getvalue()
    if p["caption"]:
        out["txt"] = meta["caption"]["text"].encode()
    else:
        meta["caption"].update(text=None, origin=None, reason="test: no caption")
    sync = meta["alignment"]["sync"]
    if p["sync"]:
        sync.update(offset=0.25, confidence=0.5, reason=None)
    else:
        sync.update(offset=None, confidence=None, reason="test: no offset")
    out["json"] = json.dumps(meta).encode()
    errors = validate_sample(out["__key__"], {k: v for k, v in out.items() if k != "__key__"})
    assert not errors, errors
    return out


@pytest.fixture(scope="module")
def labelled(release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, bool]]]:
    """The session release with rewritten labels, and the plan of each key."""
    root = tmp_path_factory.mktemp("labelled") / "acav1m"
    (root / "data").mkdir(parents=True)
    shutil.copy(release / "README.md", root / "README.md")
    shards = list_shards(release)
    keys = sorted(s["__key__"] for files in shards.values() for f in files for s in read_raw(f))
    truth = {key: plan(i) for i, key in enumerate(keys)}
    for files in shards.values():
        for shard in files:
            with wds.TarWriter(str(root / "data" / shard.name), encoder=False) as writer:
                for sample in read_raw(shard):
                    writer.write(rewrite(keys.index(sample["__key__"]), sample))
    return root, truth


def expected(truth: dict[str, dict[str, bool]], task: str, keys: list[str]) -> list[str]:
    need = {
        "classification": lambda p: p["category"],
        "localization": lambda p: p["localization"],
        "segmentation": lambda p: p["mask"],
        "retrieval": lambda p: p["caption"] or p["npy"],
        "sync": lambda p: p["sync"],
    }[task]
    return [k for k in keys if need(truth[k])]


def test_task_table_is_derived_from_the_schema():
    features = hf_features()
    for view in TASKS.values():
        assert set(view.columns) <= set(features), view.name
        assert {"__key__", "mp4", "flac", "json"} <= set(view.columns)
        assert set(view.input_columns) <= set(view.columns)
    with pytest.raises(ValueError, match="json.labels.nope is not a metadata field"):
        _meta("labels", "nope")
    assert TASKS["retrieval"].describe_requirements() == "txt or npy"
    assert isinstance(TASKS["sync"], TaskView)


def test_load_without_task_is_load_dataset(release: Path, tmp_path: Path):
    ours = load(release, cache_dir=str(tmp_path))
    theirs = datasets.load_dataset(str(release), cache_dir=str(tmp_path))
    assert list(ours) == list(theirs) == [s for s in ("train", "validation", "test") if s in theirs]
    for split in ours:
        assert ours[split]["__key__"] == theirs[split]["__key__"]
    assert ours["train"].features == hf_features()


@pytest.mark.parametrize("streaming", [False, True], ids=["dataset", "streaming"])
def test_task_views_keep_exactly_the_clips_that_have_the_labels(labelled, streaming: bool, tmp_path: Path):
    root, truth = labelled
    everything = load(root, streaming=streaming, cache_dir=str(tmp_path))
    for task, view in TASKS.items():
        loaded = load(root, streaming=streaming, task=task, cache_dir=str(tmp_path))
        assert list(loaded) == list(everything)
        for split in loaded:
            all_keys = [r["__key__"] for r in everything[split].select_columns(["__key__"])]
            rows = list(loaded[split])
            assert [r["__key__"] for r in rows] == expected(truth, task, all_keys), (task, split)
            assert all(list(r) == list(view.columns) for r in rows)
        assert 0 < len(expected(truth, task, list(truth))) < len(truth), (
            f"the plan must keep and skip some clips for {task}"
        )


def test_task_view_on_one_split_decodes_media(labelled, tmp_path: Path):
    root, truth = labelled
    seg = load(root, split="train", task="segmentation", cache_dir=str(tmp_path))
    assert isinstance(seg, datasets.Dataset) and len(seg) > 0
    row = seg[0]
    assert row["mask.png"].mode == "L" and row["jpg"].mode == "RGB"
    assert row["json"]["labels"]["mask"]["present"] is True
    sync = load(root, split="train", streaming=True, task="sync")
    assert isinstance(sync, datasets.IterableDataset)
    row = next(iter(sync))
    assert row["json"]["alignment"]["sync"]["offset"] == pytest.approx(0.25)
    assert type(row["mp4"]).__name__ == "VideoDecoder" and int(row["flac"]["sampling_rate"]) == 16000
    retrieval = load(root, split="train", task="retrieval", cache_dir=str(tmp_path))
    with_npy = [r for r in retrieval if r["npy"] is not None]
    assert all(np.asarray(r["npy"]).shape == (2, 4) for r in with_npy)
    assert len(with_npy) == sum(truth[k]["npy"] for k in retrieval["__key__"])


def test_task_view_applies_to_an_already_loaded_dataset(labelled, tmp_path: Path):
    root, truth = labelled
    train = datasets.load_dataset(str(root), split="train", cache_dir=str(tmp_path))
    view = task_view(train, "classification")
    assert view["__key__"] == expected(truth, "classification", train["__key__"])


def test_unknown_task_and_split_name_the_valid_values(release: Path, tmp_path: Path):
    with pytest.raises(
        ValueError,
        match=r"unknown task 'captioning'; valid tasks: classification, localization, segmentation, retrieval, sync",
    ):
        load(release, task="captioning", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"unknown split 'dev' in .*; valid splits: train, validation, test"):
        load(release, split="dev", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"unknown split 'dev'.*valid splits: train, validation, test"):
        load(release, split="dev", streaming=True)

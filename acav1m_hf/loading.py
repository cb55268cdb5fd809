"""Load an ACAV-1M release with Hugging Face ``datasets``, optionally as a task view.

`load` is a thin layer over ``datasets.load_dataset``: a release folder (or its
Hub repository) carries a dataset card whose YAML declares ``configs`` (one
``data_files`` pattern per split) and ``dataset_info.features`` (from
`acav1m_hf.schema.hf_features`), so ``datasets`` picks its packaged
``webdataset`` builder, skips feature inference (which would fail on optional
members) and decodes ``mp4``/``flac``/``jpg``/``mask.png`` itself.

What this module adds is the *task views* (`TASKS`): each names the columns a
task needs and the values without which a clip is useless for it (a
classification clip without a class label, a segmentation clip without a
mask). A view keeps those columns and skips such clips, on a ``Dataset`` and on
an ``IterableDataset`` alike, so that training code never sees a ``None`` label.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acav1m_hf.schema import MEMBER_EXTENSIONS, iter_leaves

Path_ = tuple[str, ...]
"""A column path: the top-level column first (``("json", "labels", "category", "label")`` or ``("mask.png",)``)."""

_IDENTITY = ("__key__", "__url__")
_METADATA_LEAVES = frozenset(path for path, _ in iter_leaves())


def _member(extension: str) -> str:
    """A member column, checked against the schema so the task table cannot name a column that does not exist."""
    if extension not in MEMBER_EXTENSIONS:
        raise ValueError(f"task table: {extension!r} is not a member of the schema ({', '.join(MEMBER_EXTENSIONS)})")
    return extension


def _meta(*path: str) -> Path_:
    """A metadata leaf below the ``json`` column, checked against `acav1m_hf.schema.METADATA`."""
    if path not in _METADATA_LEAVES:
        raise ValueError(f"task table: json.{'.'.join(path)} is not a metadata field of the schema")
    return (_member("json"), *path)


def _present(extension: str) -> Path_:
    return (_member(extension),)


@dataclass(frozen=True)
class TaskView:
    """The columns a task reads and the values a clip must have to be useful for it.

    ``requires`` is a conjunction of alternatives: every entry must be
    satisfied, and an entry is satisfied when any of its paths is non-null.
    """

    name: str
    description: str
    columns: tuple[str, ...]
    requires: tuple[tuple[Path_, ...], ...]

    @property
    def input_columns(self) -> list[str]:
        """Top-level columns the skip predicate reads (only these get decoded for filtering)."""
        return sorted({path[0] for alternatives in self.requires for path in alternatives})

    def describe_requirements(self) -> str:
        return " and ".join(" or ".join(".".join(p) for p in alternatives) for alternatives in self.requires)


_AV = (_member("mp4"), _member("flac"))
_JSON = _member("json")

TASKS: dict[str, TaskView] = {
    view.name: view
    for view in (
        TaskView(
            "classification",
            "Audio-visual classification: the clip, its keyframe and `json.labels.category` (label, id, score).",
            (*_IDENTITY, *_AV, _member("jpg"), _JSON),
            ((_meta("labels", "category", "label"),),),
        ),
        TaskView(
            "localization",
            "Sound-source localization: the clip, its keyframe and `json.labels.localization` (peak, box).",
            (*_IDENTITY, *_AV, _member("jpg"), _JSON),
            ((_meta("labels", "localization", "peak"),),),
        ),
        TaskView(
            "segmentation",
            "Sounding-object segmentation: the clip, its keyframe and the `mask.png` member.",
            (*_IDENTITY, *_AV, _member("jpg"), _member("mask.png"), _JSON),
            ((_present("mask.png"),),),
        ),
        TaskView(
            "retrieval",
            "Cross-modal retrieval: the clip with its caption (`txt`) and/or its embeddings (`npy`).",
            (*_IDENTITY, *_AV, _member("txt"), _member("npy"), _JSON),
            ((_present("txt"), _present("npy")),),
        ),
        TaskView(
            "sync",
            "Audio-visual synchronisation: the clip and `json.alignment.sync` (offset, confidence).",
            (*_IDENTITY, *_AV, _JSON),
            ((_meta("alignment", "sync", "offset"),),),
        ),
    )
}
"""The task views, by name. Columns are dataset columns (members plus ``__key__``/``__url__``)."""


def _get(value: Any, path: Path_) -> Any:
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class _Keep:
    """Skip predicate of a task view; a class (not a closure) so ``datasets`` can hash and pickle it."""

    def __init__(self, view: TaskView) -> None:
        self.columns = view.input_columns
        self.requires = view.requires

    def __call__(self, *values: Any) -> bool:
        row = dict(zip(self.columns, values, strict=True))
        return all(any(_get(row, path) is not None for path in alternatives) for alternatives in self.requires)


def task_view(dataset: Any, task: str) -> Any:
    """Apply a task view to a ``Dataset``, ``IterableDataset`` or a dict of either (one per split).

    Columns are selected first so that the skip predicate, which reads only
    `TaskView.input_columns`, decodes as little as possible.
    """
    view = _task(task)
    if isinstance(dataset, Mapping):
        return type(dataset)({name: task_view(split, task) for name, split in dataset.items()})
    missing = [c for c in view.columns if c not in (dataset.column_names or view.columns)]
    if missing:
        raise ValueError(f"task {task!r} needs column(s) {', '.join(missing)}, which this dataset lacks")
    # A Dataset decodes only `input_columns` for the predicate. An IterableDataset (datasets 5.2) decodes the
    # whole example first; its media decoders are lazy (torchcodec reads headers, not frames), so that is cheap.
    # (Switching decoding off for the filter and back on after it does not work: `.decode(True)` after
    # `.filter()` leaves media undecoded in datasets 5.2.)
    selected = dataset.select_columns(list(view.columns))
    return selected.filter(_Keep(view), input_columns=view.input_columns)


def _task(task: str) -> TaskView:
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}") from None


def load(
    path_or_repo: str | os.PathLike[str],
    split: str | None = None,
    streaming: bool = False,
    task: str | None = None,
    **kwargs: Any,
) -> Any:
    """Load a release folder or a Hub dataset repository (``user/acav1m``) with ``datasets.load_dataset``.

    Returns a ``DatasetDict`` (``IterableDatasetDict`` when ``streaming``), or
    one split's ``Dataset``/``IterableDataset`` when ``split`` is given. With
    ``task``, every split is narrowed to `TASKS[task]`. ``kwargs`` go to
    ``load_dataset`` (``cache_dir``, ``revision``, ``token``, ...).

    A local path is resolved before the Hub, as ``load_dataset`` does. The split
    is checked here rather than by ``load_dataset`` so that the error names the
    splits this release actually has.
    """
    import datasets

    view = _task(task) if task is not None else None
    if "split" in kwargs:
        raise TypeError("pass split as load(..., split=...)")
    loaded = datasets.load_dataset(os.fspath(path_or_repo), streaming=streaming, **kwargs)
    if split is not None:
        if split not in loaded:
            raise ValueError(f"unknown split {split!r} in {os.fspath(path_or_repo)}; valid splits: {', '.join(loaded)}")
        loaded = loaded[split]
    return task_view(loaded, view.name) if view is not None else loaded

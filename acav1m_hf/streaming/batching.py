"""`collate`: batches of decoded samples for a ``DataLoader``, padding clips of different lengths."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _pad_stack(tensors: list[torch.Tensor | None], what: str, keys: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack along a new batch dim, zero-padding dim 0 to the longest; a missing tensor is all padding (length 0)."""
    present = [t for t in tensors if t is not None]
    trailing = {tuple(t.shape[1:]) for t in present}
    if len(trailing) > 1:
        raise ValueError(
            f"collate: {what} shapes differ beyond the first dim ({sorted(trailing)}) in {keys}; pass size= to stream()"
        )
    shape = trailing.pop() if trailing else ()
    lengths = torch.tensor([0 if t is None else t.shape[0] for t in tensors], dtype=torch.int64)
    dtype = present[0].dtype if present else torch.float32
    out = torch.zeros((len(tensors), int(lengths.max()) if len(lengths) else 0, *shape), dtype=dtype)
    for i, t in enumerate(tensors):
        if t is not None:
            out[i, : t.shape[0]] = t
    return out, lengths


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch decoded samples for a DataLoader (``DataLoader(stream(...), batch_size=8, collate_fn=collate)``).

    ``flac`` becomes ``B x N`` float32 zero-padded to the longest clip, with
    ``flac_lengths``; ``mp4`` frames become ``B x T x C x H x W`` uint8 padded in
    T, with ``mp4_lengths`` (frames must share H x W: use ``size``). ``jpg``
    keyframes are stacked (``B x H x W x 3``) when they share a shape, else a
    list. Everything else (``json``, ``txt``, ``mask.png``, ``npy``, keys) stays
    a list, since clips may lack them. Raw (``decode=False``) members stay lists.
    """
    if not batch:
        raise ValueError("collate: empty batch")
    keys = [s.get("__key__") for s in batch]
    out: dict[str, Any] = {name: [s.get(name) for s in batch] for name in batch[0]}
    for name, lengths_name in (("flac", "flac_lengths"), ("mp4", "mp4_lengths")):
        values = out.get(name)
        if (
            values
            and all(v is None or isinstance(v, torch.Tensor) for v in values)
            and any(v is not None for v in values)
        ):
            out[name], out[lengths_name] = _pad_stack(values, name, keys)
    images = out.get("jpg")
    if images and all(isinstance(v, np.ndarray) for v in images) and len({v.shape for v in images}) == 1:
        out["jpg"] = torch.from_numpy(np.stack(images))
    return out

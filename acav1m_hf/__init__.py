"""acav1m_hf: the ACAV-1M schema, loading, streaming, Croissant, dataset card, Hub I/O and CLI.

``load`` wraps ``datasets.load_dataset`` with task views; ``stream`` and
``collate`` give a PyTorch ``IterableDataset`` over the shards. They are
imported on first use, so that ``import acav1m_hf`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["collate", "load", "stream"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from acav1m_hf.loading import load

        return load
    if name in ("stream", "collate"):
        from acav1m_hf import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module 'acav1m_hf' has no attribute {name!r}")

"""Engines schedule units; stages compute them.

* `LocalEngine` (``--engine local``, the default): units one after another in
  this process (`curation.engines.local`).
* `RayEngine` (``--engine ray``): one Ray task per unit on CPU workers, model
  stages in GPU actors when the config's device is CUDA
  (`curation.engines.ray`).

Both implement `curation.engines.work.Engine` on a `curation.engines.work.Job`.
A unit's outcome lives in the output store (its record), not in the engine,
so a crashed driver, a lost worker or a killed run loses at most the units in
flight.
"""

from __future__ import annotations

from curation.engines.local import LocalEngine
from curation.engines.ray import RayEngine

__all__ = ["LocalEngine", "RayEngine", "make_engine"]


def make_engine(name: str, address: str | None = None, workers: int | None = None) -> LocalEngine | RayEngine:
    """The engine named on the command line."""
    if name == "local":
        if address:
            raise ValueError("--ray-address needs --engine ray")
        return LocalEngine(workers=workers)
    if name == "ray":
        return RayEngine(address=address, workers=workers)
    raise ValueError(f"unknown engine {name!r} (known: local, ray)")

"""What an engine is given and what it returns: the `Job` and `Engine` protocols, and `UnitFailure`.

An engine takes the planned units and a `Job` and makes sure each unit is
processed once (`Job.process` writes the unit's parts and record), retrying a
unit that raises up to its ``max_attempts`` before reporting it as a
`UnitFailure`; an error of ``job.fatal`` (a full output disk) is not the
unit's failure and stops the run at once. Engines never touch samples, and
import no project module but this one and `curation.records`: the same stage
code runs under each, so the same inputs and config give byte-identical shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from curation.records import Clip, UnitFailure

__all__ = ["DEFAULT_ATTEMPTS", "Engine", "Job", "UnitFailure", "UnitOfWork", "describe"]

DEFAULT_ATTEMPTS = 3


class UnitOfWork(Protocol):
    """What an engine sees of a unit: its name. It hands the unit back to `Job.process` as it got it."""

    @property
    def name(self) -> str: ...


class Job(Protocol):
    """Everything a worker needs to process any unit of one run (picklable: it travels to Ray workers)."""

    fatal: tuple[type[BaseException], ...]
    """Errors that stop the whole run at once, never retried (a full disk: every other unit would fail the same)."""

    @property
    def device(self) -> str:
        """Where the model stages run: ``cpu`` or ``cuda[:n]``."""
        ...

    def shareable(self) -> bool:
        """Whether workers in other processes can write the output (not a ``memory://`` one)."""
        ...

    def process(self, unit: Any, models: Any = None) -> str:
        """Process ``unit`` into the output, its model stages in ``models`` (None: in this process); its name."""
        ...

    def run_models(self, clips: list[Clip]) -> list[Any]:
        """The model stages on one batch of clips, in this process (what a GPU actor serves)."""
        ...

    def models_info(self) -> tuple[str, dict[str, str | None]]:
        """The profile's name and role → model name, as every sample records them (loads the models)."""
        ...


class Engine(Protocol):
    """Schedules units; `Job.process` computes them."""

    name: str

    def run(self, units: Sequence[Any], job: Job) -> list[UnitFailure]: ...


def describe(exc: BaseException) -> str:
    """A unit's error as recorded in its failure: ``Type: message``, at most 500 characters."""
    return f"{type(exc).__name__}: {exc}"[:500]

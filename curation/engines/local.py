"""`LocalEngine` (``--engine local``, the default): units one after another in this process."""

from __future__ import annotations

from collections.abc import Sequence

from curation.engines.work import DEFAULT_ATTEMPTS, Job, UnitFailure, UnitOfWork, describe


class LocalEngine:
    """Units in order, in this process; a unit that raises is retried up to ``max_attempts`` times."""

    name = "local"

    def __init__(self, max_attempts: int = DEFAULT_ATTEMPTS, progress: bool = True, workers: int | None = None) -> None:
        if workers not in (None, 1):
            raise ValueError("the local engine runs one worker; use --engine ray --workers N for parallel workers")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts, self.progress = max_attempts, progress

    def run(self, units: Sequence[UnitOfWork], job: Job) -> list[UnitFailure]:
        from tqdm import tqdm

        failures = []
        for unit in tqdm(units, desc="units", unit="unit", disable=not self.progress):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    job.process(unit)
                    break
                except job.fatal:  # the disk, not the unit: every other unit would fail the same way
                    raise
                except Exception as exc:  # noqa: BLE001 - a unit's failure is retried, then reported
                    if attempt == self.max_attempts:
                        failures.append(UnitFailure(unit.name, attempt, describe(exc)))
        return failures

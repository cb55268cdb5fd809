"""`RayEngine` (``--engine ray``): one Ray task per unit, model stages in GPU actors when the models are on CUDA.

One Ray task per unit (``num_cpus=1``), at most ``workers`` in flight, so
decoding, filtering and encoding run on CPU workers in parallel across a
cluster. When the job's device is CUDA, the model stages (caption, align,
re-align) run instead in GPU actors (``num_gpus=gpus_per_actor``, fractional
allowed) that load the profile once and serve batches of clips from every CPU
task; the ``cpu`` profile needs no actor. It starts a local Ray when no
address is given and joins a cluster with ``address`` (``--ray-address``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from curation.engines.work import DEFAULT_ATTEMPTS, Job, UnitFailure, UnitOfWork, describe
from curation.records import Clip


class ModelActor:
    """Holds the profile's models (on a GPU) and runs the model stages on batches of clips sent by CPU tasks."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.info = job.models_info()  # loads the models now, once per actor

    def profile_info(self) -> tuple[str, dict[str, str | None]]:
        return self.info

    def run(self, clips: list[Clip]) -> list[Any]:
        return self.job.run_models(clips)


class _ProfileView:
    """What a sample records of a profile whose models live in an actor: its name and model names."""

    def __init__(self, name: str, models: dict[str, str | None]) -> None:
        self.name, self._models = name, models

    def models(self) -> dict[str, str | None]:
        return dict(self._models)


class ActorModels:
    """The model stages of a CPU task, sent to a `ModelActor` batch by batch."""

    def __init__(self, actor: Any, info: tuple[str, dict[str, str | None]]) -> None:
        self.actor = actor
        self.profile = _ProfileView(*info)

    def run(self, clips: list[Clip]) -> list[Any]:
        import ray

        return ray.get(self.actor.run.remote(clips))


def _process_on_ray(job: Job, unit: UnitOfWork, actor: Any = None, info: Any = None) -> str:
    """The body of a Ray task: one unit, with its model stages in ``actor`` when one is given."""
    return job.process(unit, ActorModels(actor, info) if actor is not None else None)


class RayEngine:
    """One Ray task per unit on CPU workers; model stages in GPU actors when the config's device is CUDA.

    ``workers`` bounds the tasks in flight (and is the CPU count of a local
    Ray started here); by default every CPU of the cluster. ``gpu_actors``
    model actors are started, by default as many as the cluster's GPUs allow
    at ``gpus_per_actor`` each.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        max_attempts: int = DEFAULT_ATTEMPTS,
        gpus_per_actor: float = 1.0,
        gpu_actors: int | None = None,
        progress: bool = True,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.address, self.workers, self.max_attempts = address, workers, max_attempts
        self.gpus_per_actor, self.gpu_actors, self.progress = gpus_per_actor, gpu_actors, progress
        self.used_actors = 0
        """How many model actors the last run started (0 when the model stages ran in the CPU tasks)."""

    def run(self, units: Sequence[UnitOfWork], job: Job) -> list[UnitFailure]:
        try:
            import ray
        except ImportError as exc:
            raise RuntimeError("--engine ray needs Ray: pip install 'acav1m[ray]'") from exc
        if not job.shareable():
            raise ValueError("a memory:// output lives in one process; Ray workers cannot write to it")
        started = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=True)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False)
            started = True
        try:
            return self._run(ray, units, job)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, units: Sequence[UnitOfWork], job: Job) -> list[UnitFailure]:
        from tqdm import tqdm

        resources = ray.cluster_resources()
        limit = self.workers or max(1, int(resources.get("CPU", 1)))
        actors, info = self._start_actors(ray, job, resources)
        self.used_actors = len(actors)
        task = ray.remote(num_cpus=1, max_retries=0)(_process_on_ray)
        job_ref = ray.put(job)
        queue: deque[tuple[UnitOfWork, int]] = deque((unit, 1) for unit in units)
        pending: dict[Any, tuple[UnitOfWork, int]] = {}
        failures: list[UnitFailure] = []
        submitted = 0
        bar = tqdm(total=len(units), desc="units", unit="unit", disable=not self.progress)
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    unit, attempt = queue.popleft()
                    actor = actors[submitted % len(actors)] if actors else None
                    pending[task.remote(job_ref, unit, actor, info)] = (unit, attempt)
                    submitted += 1
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    unit, attempt = pending.pop(ref)
                    try:
                        ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - task errors, lost workers, dead actors alike
                        if isinstance(_cause(ray, exc), job.fatal):
                            raise _cause(ray, exc) from None  # a full disk stops the run, as with the local engine
                        if attempt < self.max_attempts:
                            queue.appendleft((unit, attempt + 1))
                            continue
                        failures.append(UnitFailure(unit.name, attempt, describe(_cause(ray, exc))))
                    bar.update(1)
        finally:
            bar.close()
            for ref in pending:
                ray.cancel(ref, force=True)
            for actor in actors:
                ray.kill(actor)
        return failures

    def _start_actors(self, ray: Any, job: Job, resources: dict[str, float]) -> tuple[list[Any], Any]:
        """GPU actors for the model stages, when the config puts the models on CUDA; none otherwise."""
        if not str(job.device).startswith("cuda"):
            return [], None
        gpus = resources.get("GPU", 0)
        if gpus < self.gpus_per_actor:
            raise RuntimeError(
                f"config device is {job.device} but the Ray cluster has {gpus:g} GPU(s) "
                f"(each model actor needs {self.gpus_per_actor:g}); use --device cpu or join a cluster with GPUs"
            )
        count = self.gpu_actors or max(1, int(gpus // self.gpus_per_actor))
        actor_class = ray.remote(num_gpus=self.gpus_per_actor, num_cpus=0, max_restarts=3)(ModelActor)
        actors = [actor_class.remote(job) for _ in range(count)]
        start = time.monotonic()
        info = ray.get(actors[0].profile_info.remote())
        ray.get([a.profile_info.remote() for a in actors[1:]])
        if self.progress:
            print(f"{count} model actor(s) ready in {time.monotonic() - start:.1f} s", flush=True)
        return actors, info


def _cause(ray: Any, exc: Exception) -> BaseException:
    """The stage's own exception inside a Ray task error, so that a failure reads the same on either engine."""
    if isinstance(exc, ray.exceptions.RayTaskError) and getattr(exc, "cause", None) is not None:
        return exc.cause
    return exc

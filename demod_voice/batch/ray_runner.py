"""Ray workers: one actor per worker (or per GPU), each holding its loaded engines.

The driver (this process) keeps the job file, the resume state, the progress bar and the report, and
writes every output itself, so outputs need not be on a shared filesystem. Inputs (voices, models,
reference audio) must be readable at the same paths on every node, and demod-voice must be installed
there (see docs/batch.md).
"""

from __future__ import annotations

import logging
import os

from demod_voice.batch.worker import Outcome, Worker
from demod_voice.errors import EngineError, missing_extra

_LOGGER = logging.getLogger(__name__)


class _ActorBody(Worker):
    """The actor's state is a ``Worker``: loaded engines survive between calls."""

    def ping(self) -> str:
        return f"{os.uname().nodename}:{os.getpid()}"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise missing_extra("ray", "ray") from None
    return ray


class RayBackend:
    """Jobs on Ray actors; ``address`` is a cluster address, ``auto``, or ``None`` for a local Ray."""

    name = "ray"

    def __init__(self, cfg, device: str, workers: int | None, address: str | None, verbose: bool = False):
        ray = self.ray = _import_ray()
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=verbose, configure_logging=verbose)
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    ray.init(num_cpus=max(workers or 1, os.cpu_count() or 1), **kwargs)
            except ConnectionError as exc:
                raise EngineError(f"cannot connect to the Ray cluster at {address}: {exc}",
                                  hint="start it with 'ray start --head' or pass its address (host:6379)") from None
            self._owns_ray = True
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        use_gpu = device == "gpu" or (device == "auto" and gpus > 0)
        if device == "gpu" and not gpus:
            _LOGGER.warning("the Ray cluster has no GPUs; the batch runs on CPUs")
            use_gpu = False
        if workers is None:
            workers = gpus if use_gpu else 1
        self.workers = max(1, workers)
        actor = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(_ActorBody)
        self._actor_class = actor
        self._cfg, self._device, self._verbose = cfg, "gpu" if use_gpu else "cpu", verbose
        self._actors: dict[int, object] = {}
        self._pending: dict[object, tuple[int, object]] = {}
        _LOGGER.info("Ray: %d worker actor(s), %s; cluster resources %s", self.workers,
                     "1 GPU each" if use_gpu else "CPU", resources)

    def _actor(self, slot: int):
        if slot not in self._actors:
            self._actors[slot] = self._actor_class.remote(self._cfg, self._device, self._verbose)
        return self._actors[slot]

    def submit(self, slot: int, job) -> None:
        ref = self._actor(slot).run.remote(job)
        self._pending[ref] = (slot, job)

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        if not self._pending:
            return []
        ready, rest = self.ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        if ready and rest:
            ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        done: list[tuple[int, Outcome]] = []
        for ref in ready:
            slot, job = self._pending.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError) as exc:
                self._actors.pop(slot, None)  # a fresh actor takes the slot's next job
                outcome = Outcome(job.line, False, error={
                    "error": "WorkerDied", "message": f"the Ray actor died while running this job: {exc}",
                    "hint": "check the node's memory and the Ray logs"})
            except self.ray.exceptions.RayTaskError as exc:
                outcome = Outcome(job.line, False, error={"error": "RayTaskError", "message": str(exc).splitlines()[0],
                                                          "hint": "run with -v for the Ray logs"})
            done.append((slot, outcome))
        return done

    def close(self, force: bool = False) -> None:
        for actor in self._actors.values():
            self.ray.kill(actor)
        self._actors.clear()
        if self._owns_ray:
            self.ray.shutdown()

"""The ingress side of an engine deployment: a router provider whose candidates run on Serve replicas.

``RemoteProvider`` wraps the engine's own provider. ``prepare`` runs the local one (voice and model checks,
option validation, the cache identity: the same 400s and fallbacks as the single-process server), then
swaps the candidate's ``start`` for a streaming handle call. Everything else the router asks (catalog
entries, default voice, status) is the local provider's, plus the deployment's replicas.

A call that fails because its replica died (``ActorDiedError``, ``RayActorError``, an unavailable replica)
is sent once more; Serve routes it to a live replica. A retry after some sentences were delivered skips
those: a request is deterministic for its cache key (the premise of the cache), so the replay gives the same
sentences. Any other failure is the engine's, raised as it is, and the router's fallback chain takes over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from demod_voice.audio import Audio
from demod_voice.synthesis.requests import Candidate

_LOGGER = logging.getLogger(__name__)


def replica_died(exc: BaseException) -> bool:
    """True when ``exc`` says the replica (not the engine) failed: worth one more try elsewhere."""
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    died = (ray_errors.RayActorError, ray_errors.ActorUnavailableError, ray_errors.WorkerCrashedError,
            ray_errors.NodeDiedError, serve_errors.ReplicaUnavailableError, serve_errors.DeploymentUnavailableError)
    return isinstance(exc, died)


class DeploymentCounters:
    """Per-deployment counters of one ingress replica (``/metrics``)."""

    def __init__(self):
        self.calls = 0
        self.retries = 0
        self.failures = 0
        self.chunks = 0
        self._lock = threading.Lock()

    def add(self, **deltas: int) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> dict:
        return {"calls": self.calls, "retries": self.retries, "failures": self.failures, "chunks": self.chunks}


class RemoteProvider:
    """The router's provider for ``name``, with synthesis on the deployment behind ``handle``."""

    def __init__(self, local, handle, multiplexed: bool, deployment: str, replicas):
        self.local = local
        self.name = local.name
        self.handle = handle
        self.multiplexed = multiplexed
        self.deployment = deployment
        self.replicas = replicas
        """A callable: the deployment's replicas and state (``RayService`` keeps the snapshot)."""
        self.counters = DeploymentCounters()

    def __getattr__(self, attr):  # entries, resolve, default_voice, device, ... are the local provider's
        if attr in ("local", "__setstate__"):
            raise AttributeError(attr)
        return getattr(self.local, attr)

    def prepare(self, req, voice) -> Candidate:
        candidate = self.local.prepare(req, voice)  # the same checks, fallbacks and cache identity

        def start() -> Iterator[Audio]:
            return self.stream(req, voice)

        # the ingress thread only waits on the replica: run it in the CPU pool, never a GPU queue
        # the local candidate's request and plan: the one cache key (synthesis.keys), as without Ray
        return Candidate(candidate.engine, candidate.version, "cpu", start, candidate.origin,
                         request=candidate.request, plan=candidate.plan)

    def stream(self, req, voice) -> Iterator[Audio]:
        """The replica's chunks as they come, one retry if the replica dies (delivered sentences skipped)."""
        handle = self.handle.options(stream=True)
        if self.multiplexed:
            handle = handle.options(multiplexed_model_id=voice.tag.replace("/", "--"))
        delivered = 0
        self.counters.add(calls=1)
        for attempt in range(2):
            seen = 0
            try:
                for chunk in handle.speak.remote(req, voice):
                    seen += 1
                    if seen <= delivered:
                        continue  # already sent before the replica died
                    delivered += 1
                    self.counters.add(chunks=1)
                    yield chunk
                return
            except Exception as exc:
                if attempt == 0 and replica_died(exc):
                    _LOGGER.warning("%s: replica died (%s); trying once more", self.deployment, type(exc).__name__)
                    self.counters.add(retries=1)
                    continue
                self.counters.add(failures=1)
                raise _unwrap(exc) from None

    def status(self) -> dict:
        return {**self.local.status(), "deployment": self.replicas()}


def _unwrap(exc: BaseException) -> BaseException:
    """The engine's own error from a Ray task error (its class, message and hint), for the router."""
    from ray.exceptions import RayTaskError

    if isinstance(exc, RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return exc

"""The Serve application: the FastAPI app as the ingress, one deployment per engine, the cache deployment.

The ingress is ``server.app.create_app`` itself -- the same routes, middleware (host, origin, auth, body
limits), router policy (chains, breaker, audit), encoders and error shapes -- built in each ingress replica
with a ``RayService``: the ``Service`` whose engines are ``RemoteProvider``s and whose cache is the shared
one. ``build(cfg)`` returns the application ``serve.run`` takes.
"""

from __future__ import annotations

import logging
import threading
import time

from ray import serve

from demod_voice.server.ray_serve import settings
from demod_voice.server.service import Service, Workers

_LOGGER = logging.getLogger(__name__)

ENGINE_PREFIX = "engine-"
CACHE_DEPLOYMENT = "cache"
INGRESS_DEPLOYMENT = "ingress"


class RayService(Service):
    """``Service`` with engines on their deployments and one cache for the whole application."""

    def __init__(self, cfg, engines: dict, cache_handle, app_name: str, refresh_s: float = 2.0):
        from demod_voice.server.ray_serve.cache import SharedCache
        from demod_voice.server.ray_serve.remote import RemoteProvider

        super().__init__(_without_local_cache(cfg))
        self.cfg = cfg
        self.app_name = app_name
        self.workers.shutdown()
        self.workers = Workers(cfg.get("ray_serve.ingress_threads"))
        if cache_handle is not None and cfg.get("server.cache"):
            self.cache = SharedCache(cache_handle, cfg.get("server.request_timeout_s") / 2, refresh_s)
        self._deployments: dict = {}
        self._stop = threading.Event()
        for name, handle in engines.items():
            deployment = ENGINE_PREFIX + name
            self.router.providers[name] = RemoteProvider(
                self.router.providers[name], handle, name in settings.MULTIPLEXED, deployment,
                lambda deployment=deployment: self._deployments.get(deployment, {}))
        threading.Thread(target=self._refresh, args=(refresh_s,), daemon=True, name="serve-status").start()

    def _refresh(self, every: float) -> None:
        """Keep a snapshot of every deployment's replicas (``/health``, ``/api/engines`` read it)."""
        import ray

        while not self._stop.is_set():
            if not ray.is_initialized():  # Serve's local testing mode: no controller to ask
                return
            try:
                self._deployments = deployments_report(self.app_name)
            except Exception as exc:  # the controller is restarting: keep the last snapshot
                _LOGGER.debug("serve status: %s", exc)
            self._stop.wait(every)

    def remote_providers(self) -> dict:
        from demod_voice.server.ray_serve.remote import RemoteProvider

        return {n: p for n, p in self.router.providers.items() if isinstance(p, RemoteProvider)}

    def health(self) -> dict:
        out = super().health()
        out["ray_serve"] = {"application": self.app_name,
                            "deployments": {name: _public(d) for name, d in self._deployments.items()}}
        return out

    def engines_report(self, user: str, admin: bool = False) -> dict:
        report = super().engines_report(user, admin)
        if not admin:  # process ids and node ids are for operators
            for status in report["engines"].values():
                if isinstance(status.get("deployment"), dict):
                    status["deployment"] = _public(status["deployment"])
        return report

    def deployment_counters(self) -> dict:
        """(deployment -> counters of this ingress replica) and (deployment -> replicas by state)."""
        counters = {p.deployment: p.counters.to_dict() for p in self.remote_providers().values()}
        return {"counters": counters, "deployments": dict(self._deployments)}

    def preload(self) -> None:
        provider = self.router.providers[self.router.default_engine()]
        handle = getattr(provider, "handle", None)
        if handle is not None:
            handle.preload.remote(self.router.default_voice()).result(timeout_s=600)
        else:
            super().preload()

    def close(self) -> None:
        self._stop.set()
        super().close()


def _without_local_cache(cfg):
    """``cfg`` with the ingress's own cache off (the shared one replaces it), leaving ``cfg`` itself alone."""
    import copy

    local = copy.deepcopy(cfg)
    local.set("server.cache", False, "serve --ray")
    return local


def _public(deployment: dict) -> dict:
    return {k: v for k, v in deployment.items() if k != "replicas"} | {
        "replicas": [{k: v for k, v in r.items() if k in ("state",)} for r in deployment.get("replicas", [])]}


def deployments_report(app_name: str) -> dict:
    """Deployment name -> {status, replica_states, replicas: [{state, pid, node_id, replica_id}]}."""
    from ray.serve.context import _get_global_client

    details = _get_global_client().get_serve_details()
    app = (details.get("applications") or {}).get(app_name) or {}
    out = {}
    for name, dep in (app.get("deployments") or {}).items():
        replicas = [{"state": _text(r.get("state")), "pid": r.get("pid"), "node_id": r.get("node_id"),
                     "replica_id": r.get("replica_id")} for r in dep.get("replicas") or []]
        states: dict = {}
        for r in replicas:
            states[r["state"]] = states.get(r["state"], 0) + 1
        out[name] = {"status": _text(dep.get("status")), "replica_states": states, "replicas": replicas,
                     "target_replicas": (dep.get("target_num_replicas")), "at": round(time.time(), 1)}
    return out


def _text(value) -> str:
    """An enum's value (the controller's JSON already has strings; Python objects in other versions)."""
    return str(getattr(value, "value", value))


@serve.ingress()
class Ingress:
    """The FastAPI app of ``create_app``, built in each replica around a ``RayService``."""

    def __init__(self, cfg, engines: dict, cache, app_name: str):
        self.cfg, self.engines, self.cache, self.app_name = cfg, engines, cache, app_name

    def __serve_build_asgi_app__(self):
        from demod_voice.server.app import create_app

        service = RayService(self.cfg, self.engines, self.cache, self.app_name)
        return create_app(self.cfg, service=service)


def engines_to_deploy(cfg) -> list[str]:
    """The TTS engines that are installed here; with ``ray_serve.engines`` set, only those it names."""
    from demod_voice.synthesis import registry

    wanted = cfg.get("ray_serve.engines") or {}
    out = []
    for name in registry.names(cfg, kind="tts"):
        engine = registry.get(name, cfg)
        if wanted and name not in wanted:
            continue
        if getattr(engine, "FAMILY", False) or name in registry.instances(cfg):
            continue  # remote engines are HTTP clients: they stay in the ingress
        ok, _ = getattr(engine, "replica_available", engine.available)(cfg)  # a replica may start its server
        if ok:
            out.append(name)
    return out


def build(cfg, app_name: str | None = None):
    """The application: ingress + one deployment per engine + (with the cache on) the cache deployment."""
    from demod_voice.server.ray_serve.cache import CacheDeployment
    from demod_voice.server.ray_serve.engine import EngineDeployment

    settings.check(cfg)
    app_name = app_name or cfg.get("ray_serve.app_name")
    import ray

    gpus = ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0
    engines = {}
    for name in engines_to_deploy(cfg):
        options = settings.engine_settings(name, cfg, gpus).deployment_options()
        engines[name] = EngineDeployment.options(name=ENGINE_PREFIX + name, **options).bind(cfg, name)
    cache = None
    if cfg.get("server.cache"):
        cache = CacheDeployment.options(name=CACHE_DEPLOYMENT).bind(
            str(settings.cache_root(cfg)), cfg.get("cache.max_size_mb") * 1024 * 1024,
            cfg.get("server.request_timeout_s"))
    ingress = serve.deployment(Ingress).options(
        name=INGRESS_DEPLOYMENT, num_replicas=cfg.get("ray_serve.ingress_replicas"),
        ray_actor_options={"num_cpus": 0}, max_ongoing_requests=max(100, cfg.get("server.max_connections")))
    return ingress.bind(cfg, engines, cache, app_name)

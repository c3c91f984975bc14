"""The ``ray_serve`` section of the one config schema, turned into Serve deployment options.

``ray_serve.engines.<name>`` takes ``replicas``, ``num_cpus``, ``num_gpus``, ``max_ongoing_requests``,
``min_replicas``, ``max_replicas``, ``target_ongoing_requests`` (autoscaling when ``max_replicas`` is given)
and ``resources`` (custom Ray resources, e.g. ``{node2: 0.1}`` to pin a deployment to labelled nodes).
Every value is checked here with the key path in the message, as ``config validate`` does for the rest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from demod_voice.errors import ConfigError

#: Engines that keep per-voice state in their replica (latents, loaded conversion models): requests for one
#: voice are routed to the replica that already holds it (``@serve.multiplexed``).
MULTIPLEXED = frozenset({"xtts", "rvc", "styletts2"})
#: Engines that run on a GPU when the device allows it (Piper runs on CPUs).
GPU_ENGINES = frozenset({"xtts", "rvc", "styletts2"})

_KEYS = ("replicas", "num_cpus", "num_gpus", "max_ongoing_requests", "min_replicas", "max_replicas",
         "target_ongoing_requests", "resources")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class EngineSettings:
    """One engine's deployment."""

    replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_ongoing_requests: int = 2
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None
    resources: dict = field(default_factory=dict)

    def deployment_options(self) -> dict:
        """Keyword arguments of ``Deployment.options`` (autoscaling when ``max_replicas`` is set)."""
        actor = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.resources:
            actor["resources"] = dict(self.resources)
        out = {"ray_actor_options": actor, "max_ongoing_requests": self.max_ongoing_requests}
        if self.max_replicas is not None:
            autoscaling = {"min_replicas": self.min_replicas if self.min_replicas is not None else 1,
                           "max_replicas": self.max_replicas, "initial_replicas": self.replicas}
            if self.target_ongoing_requests is not None:
                autoscaling["target_ongoing_requests"] = self.target_ongoing_requests
            out["autoscaling_config"] = autoscaling
        else:
            out["num_replicas"] = self.replicas
        return out


def _number(where: str, value, integer: bool, low: float, high: float):
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if ok and not (math.isfinite(value) and low <= value <= high):
        ok = False
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"config key '{where}' expects {kind} from {low:g} to {high:g}, found {value!r}",
                          hint="see docs/scale-out.md for the ray_serve settings")
    return value


def engine_settings(name: str, cfg, gpus: bool = False) -> EngineSettings:
    """``ray_serve.engines.<name>`` over the defaults for that engine (``gpus``: the cluster has some)."""
    raw = (cfg.get("ray_serve.engines") or {}).get(name) or {}
    where = f"ray_serve.engines.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"config key '{where}' expects a mapping, found {raw!r}",
                          hint="e.g. {replicas: 2, num_cpus: 1}")
    unknown = [k for k in raw if k not in _KEYS]
    if unknown:
        raise ConfigError(f"config key '{where}.{unknown[0]}' is not a deployment setting",
                          hint="use " + ", ".join(_KEYS))
    gpu = gpus and name in GPU_ENGINES and cfg.get("device") != "cpu"
    threads = cfg.get("piper.onnx_threads") if name == "piper" else None
    values: dict = {"num_cpus": float(threads or 1), "num_gpus": 1.0 if gpu else 0.0}
    for key, integer, low, high in (("replicas", True, 0, 10_000), ("max_ongoing_requests", True, 1, 100_000),
                                    ("min_replicas", True, 0, 10_000), ("max_replicas", True, 1, 10_000),
                                    ("num_cpus", False, 0, 4096), ("num_gpus", False, 0, 1024),
                                    ("target_ongoing_requests", False, 0.01, 100_000)):
        if raw.get(key) is not None:
            values[key] = _number(f"{where}.{key}", raw[key], integer, low, high)
    resources = raw.get("resources") or {}
    if not isinstance(resources, dict):
        raise ConfigError(f"config key '{where}.resources' expects a mapping of resource -> amount",
                          hint="e.g. {node2: 0.1}")
    for key, amount in resources.items():
        if not _NAME.match(str(key)):
            raise ConfigError(f"config key '{where}.resources' has a bad resource name {key!r}")
        _number(f"{where}.resources.{key}", amount, False, 0, 1_000_000)
    values["resources"] = dict(resources)
    settings = EngineSettings(**values)
    if settings.max_replicas is not None and (settings.min_replicas or 0) > settings.max_replicas:
        raise ConfigError(f"config key '{where}': min_replicas is above max_replicas")
    return settings


def check(cfg) -> None:
    """Validate every ``ray_serve.engines`` entry (``serve --ray`` calls it before starting Ray)."""
    for name in cfg.get("ray_serve.engines") or {}:
        if not _NAME.match(str(name)):
            raise ConfigError(f"config key 'ray_serve.engines' has a bad engine name {name!r}")
        engine_settings(name, cfg)


def cache_root(cfg):
    """The shared audio cache's folder: ``ray_serve.cache_dir``, else the single-process server's."""
    from pathlib import Path

    from demod_voice.cache import default_root

    return Path(cfg.get("ray_serve.cache_dir") or default_root(cfg))

"""``GET /metrics``: Prometheus text built at scrape time from the service's own counters."""

from __future__ import annotations

import collections
import threading


class RequestCounter:
    """HTTP requests by route template, method and status, and their total latency."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()
        self.seconds: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.counts[(route, method, str(status))] += 1
            self.seconds[(route, method)] += seconds


def render(service, requests: RequestCounter) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def collect(self):
            http = CounterMetricFamily("demod_http_requests", "HTTP requests", labels=["route", "method", "status"])
            with requests._lock:
                for (route, method, status), n in requests.counts.items():
                    http.add_metric([route, method, status], n)
                secs = CounterMetricFamily("demod_http_request_seconds", "time spent answering", labels=["route", "method"])
                for (route, method), s in requests.seconds.items():
                    secs.add_metric([route, method], s)
            yield http
            yield secs
            engines = service.router.engines()
            fam = {
                "requests": CounterMetricFamily("demod_engine_requests", "synthesis attempts", labels=["engine"]),
                "failures": CounterMetricFamily("demod_engine_failures", "failed attempts", labels=["engine"]),
                "fallbacks": CounterMetricFamily("demod_engine_fallbacks", "times the next engine was tried", labels=["engine"]),
            }
            latency = GaugeMetricFamily("demod_engine_latency_seconds", "moving-average request latency", labels=["engine"])
            circuit = GaugeMetricFamily("demod_engine_circuit_open", "1 while the engine is skipped", labels=["engine"])
            for name, st in engines.items():
                for key, f in fam.items():
                    f.add_metric([name], st[key])
                if st["latency_avg_s"] is not None:
                    latency.add_metric([name], st["latency_avg_s"])
                circuit.add_metric([name], 1 if st["circuit"] == "open" else 0)
            yield from fam.values()
            yield latency
            yield circuit
            events = CounterMetricFamily("demod_fallback_events", "fallbacks by engine and reason", labels=["engine", "reason"])
            for (engine, reason), n in list(service.router.audit.counts.items()):
                events.add_metric([engine, reason], n)
            yield events
            from demod_voice.synthesis.manager import MODELS

            loaded = GaugeMetricFamily("demod_models_loaded", "models in memory", labels=["engine", "device"])
            weight = GaugeMetricFamily("demod_model_bytes", "size of the models in memory", labels=["engine", "device"])
            idle = GaugeMetricFamily("demod_model_idle_seconds", "time since a loaded model was last used",
                                     labels=["engine", "model", "device"])
            counts: dict = {}
            for m in MODELS.status():
                n, b = counts.get((m["engine"], m["device"]), (0, 0))
                counts[(m["engine"], m["device"])] = (n + 1, b + m["bytes"])
                idle.add_metric([m["engine"], m["model"], m["device"]], m["idle_s"])
            for (engine, device), (n, b) in counts.items():
                loaded.add_metric([engine, device], n)
                weight.add_metric([engine, device], b)
            yield loaded
            yield weight
            yield idle
            yield CounterMetricFamily("demod_model_loads", "models loaded", value=MODELS.loads)
            yield CounterMetricFamily("demod_model_unloads", "models unloaded (LRU, idle or asked)", value=MODELS.unloads)
            yield GaugeMetricFamily("demod_active_jobs", "synthesis jobs running", value=service.active)
            yield CounterMetricFamily("demod_synthesis_jobs", "synthesis jobs started", value=service.synth_count)
            if service.cache is not None:
                st = service.cache.stats()
                yield CounterMetricFamily("demod_cache_hits", "audio cache hits", value=st["hits"])
                yield CounterMetricFamily("demod_cache_misses", "audio cache misses", value=st["misses"])
                yield GaugeMetricFamily("demod_cache_entries", "audio cache entries", value=st["entries"] or 0)
                yield GaugeMetricFamily("demod_cache_bytes", "audio cache size", value=st["bytes"] or 0)
            if hasattr(service, "deployment_counters"):  # serve --ray: per-deployment counters
                from demod_voice.server.ray_serve.metrics import families

                yield from families(service.deployment_counters())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)

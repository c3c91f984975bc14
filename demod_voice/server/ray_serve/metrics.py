"""``/metrics`` under ``serve --ray``: per-deployment counters of this ingress replica and replica gauges."""

from __future__ import annotations


def families(report: dict):
    """Prometheus metric families from ``RayService.deployment_counters()``."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    names = {"calls": "engine calls sent to the deployment", "retries": "calls sent again after a replica died",
             "failures": "calls that failed (after any retry)", "chunks": "audio chunks received"}
    for key, doc in names.items():
        family = CounterMetricFamily(f"demod_deployment_{key}", doc, labels=["deployment"])
        for deployment, counters in report["counters"].items():
            family.add_metric([deployment], counters[key])
        yield family
    replicas = GaugeMetricFamily("demod_deployment_replicas", "replicas by state", labels=["deployment", "state"])
    for deployment, info in report["deployments"].items():
        for state, count in info.get("replica_states", {}).items():
            replicas.add_metric([deployment, state], count)
    yield replicas

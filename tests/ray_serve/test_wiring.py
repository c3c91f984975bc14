"""The Serve application's wiring in Serve's local testing mode (no Ray processes): the FastAPI app of the
single-process server, its engine calls through an engine deployment's streaming handle, its cache through
the cache deployment, and the ``ray_serve`` settings."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray.serve")

from tests.core.test_same_audio import JOE, engine_result, wav_samples  # noqa: E402

TEXT = "Hello there. This is the second sentence."


def make_cfg(root: Path, extra: str = ""):
    from demod_voice import config

    (root / "c.yaml").write_text(f"paths:\n  data_dir: {root / 'data'}\n  cache_dir: {root / 'cache'}\n"
                                 "piper:\n  noise_scale: 0.0\n  noise_w: 0.0\n"
                                 "ray_serve:\n  engines:\n    piper: {replicas: 2, num_cpus: 1}\n" + extra)
    return config.load(root / "c.yaml", environ={}, user_file=Path("/nonexistent")), root / "c.yaml"


@pytest.fixture
def ray_app(tmp_path, isolated_home, joe_voice):
    """The ingress app around handles of an engine deployment and a cache deployment in local testing mode."""
    from fastapi.testclient import TestClient
    from ray import serve

    from demod_voice.server.app import create_app
    from demod_voice.server.ray_serve import settings
    from demod_voice.server.ray_serve.app import RayService
    from demod_voice.server.ray_serve.cache import CacheDeployment
    from demod_voice.server.ray_serve.engine import EngineDeployment

    cfg, path = make_cfg(tmp_path)
    engine = serve.run(EngineDeployment.options(name="engine-piper").bind(cfg, "piper"), name="engines",
                       _local_testing_mode=True)
    cache = serve.run(CacheDeployment.options(name="cache").bind(str(settings.cache_root(cfg)), 1 << 26, 60.0),
                      name="cache", _local_testing_mode=True)
    service = RayService(cfg, {"piper": engine}, cache, "demod-voice", refresh_s=0.2)
    with TestClient(create_app(cfg, service=service), base_url="http://127.0.0.1") as client:
        yield client, service, path


def test_the_ingress_speaks_through_the_engine_deployment_and_caches_in_the_cache_deployment(ray_app):
    from demod_voice.synthesis import Request

    client, service, config_file = ray_app
    body = {"text": TEXT, "voice": JOE, "format": "wav", "engine": "piper"}
    first = client.post("/api/tts", json=body)
    assert first.status_code == 200, first.text
    assert first.headers["x-engine"] == "piper" and first.headers["x-cache"] == "miss"
    assert service.remote_providers()["piper"].counters.calls == 1
    assert service.remote_providers()["piper"].counters.chunks == 2  # two sentences, streamed one by one
    expected = engine_result(config_file, "piper", Request(text=TEXT, voice=JOE))
    assert wav_samples(first.content) == expected  # the same samples as the engine layer in process

    again = client.post("/api/tts", json=body)
    assert again.headers["x-cache"] == "hit" and again.content == first.content
    assert service.remote_providers()["piper"].counters.calls == 1  # the hit came from the cache deployment
    assert service.cache.handle.stats.remote().result()["entries"] == 1

    streamed = client.post("/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": JOE,
                                                     "response_format": "wav", "stream_format": "audio"})
    assert streamed.status_code == 200 and wav_samples(streamed.content) == expected


def test_request_errors_are_the_single_process_servers(ray_app):
    client, service, _ = ray_app
    bad = client.post("/api/tts", json={"text": TEXT, "voice": JOE, "engine": "piper", "params": {"volume": -5}})
    assert bad.status_code == 400 and "volume" in bad.json()["error"]["message"]
    unknown = client.post("/api/tts", json={"text": TEXT, "voice": "nobody-here"})
    assert unknown.status_code == 404
    assert service.remote_providers()["piper"].counters.calls == 0  # refused before any replica ran


def test_engines_report_carries_the_deployment_and_metrics_its_counters(ray_app):
    client, service, _ = ray_app
    service._deployments = {"engine-piper": {"status": "HEALTHY", "replica_states": {"RUNNING": 2},
                                             "replicas": [{"state": "RUNNING", "pid": 11}, {"state": "RUNNING", "pid": 12}]}}
    engines = client.get("/api/engines").json()["engines"]
    assert engines["piper"]["deployment"]["replica_states"] == {"RUNNING": 2}
    assert engines["piper"]["deployment"]["replicas"] == [{"state": "RUNNING"}, {"state": "RUNNING"}]  # no pids
    health = client.get("/health").json()
    assert health["ray_serve"]["deployments"]["engine-piper"]["status"] == "HEALTHY"
    metrics = client.get("/metrics").text
    assert 'demod_deployment_replicas{deployment="engine-piper",state="RUNNING"} 2.0' in metrics
    assert 'demod_deployment_calls_total{deployment="engine-piper"} 0.0' in metrics


def test_a_replica_that_dies_is_retried_once_skipping_the_sentences_already_sent(joe_voice):
    """``RemoteProvider.stream`` against a stand-in handle whose first stream dies after one chunk."""
    from ray.exceptions import ActorDiedError

    from demod_voice.server.ray_serve.remote import RemoteProvider

    class Stream:
        def __init__(self, chunks, die_after=None):
            self.chunks, self.die_after = chunks, die_after

        def __iter__(self):
            for i, chunk in enumerate(self.chunks):
                if i == self.die_after:
                    raise ActorDiedError()
                yield chunk

    class Handle:
        def __init__(self, streams):
            self.streams = streams
            self.speak = self

        def options(self, **kw):
            return self

        def remote(self, req, voice):
            return self.streams.pop(0)

    class Local:
        name = "piper"

    class Voice:
        tag = "piper/joe"

    provider = RemoteProvider(Local(), Handle([Stream(["a", "b", "c"], die_after=1), Stream(["a", "b", "c"])]),
                              False, "engine-piper", dict)
    assert list(provider.stream(None, Voice())) == ["a", "b", "c"]
    assert provider.counters.retries == 1
    twice = RemoteProvider(Local(), Handle([Stream(["a"], die_after=0), Stream(["a"], die_after=0)]),
                           False, "engine-piper", dict)
    with pytest.raises(ActorDiedError):
        list(twice.stream(None, Voice()))
    assert twice.counters.failures == 1


def test_settings_become_deployment_options(tmp_path):
    from demod_voice.errors import ConfigError
    from demod_voice.server.ray_serve import settings

    cfg, _ = make_cfg(tmp_path, "    xtts: {num_gpus: 0.5, max_ongoing_requests: 4, min_replicas: 1, max_replicas: 3,"
                                " target_ongoing_requests: 2}\n    styletts2: {resources: {node2: 0.1}}\n")
    piper = settings.engine_settings("piper", cfg).deployment_options()
    assert piper == {"ray_actor_options": {"num_cpus": 1, "num_gpus": 0.0}, "max_ongoing_requests": 2,
                     "num_replicas": 2}
    xtts = settings.engine_settings("xtts", cfg, gpus=True).deployment_options()
    assert xtts["ray_actor_options"]["num_gpus"] == 0.5 and "num_replicas" not in xtts
    assert xtts["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3, "initial_replicas": 1,
                                          "target_ongoing_requests": 2}
    styletts2 = settings.engine_settings("styletts2", cfg, gpus=False).deployment_options()
    assert styletts2["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0, "resources": {"node2": 0.1}}
    assert settings.engine_settings("styletts2", cfg, gpus=True).num_gpus == 1.0  # a GPU engine, GPUs there
    for bad in ("    piper: {replicas: -1}\n", "    piper: {num_gpus: .nan}\n", "    piper: {colour: red}\n",
                "    piper: {min_replicas: 3, max_replicas: 2}\n", "    piper: 5\n"):
        broken, _ = make_cfg(tmp_path, "")
        broken.values["ray_serve"]["engines"] = {**broken.values["ray_serve"]["engines"],
                                                 **__import__("yaml").safe_load(bad.strip())}
        with pytest.raises(ConfigError):
            settings.check(broken)


def test_cache_keys_hash_model_contents_not_paths(tmp_path, joe_voice):
    """A model copied to another path (another node's mount) keeps its identity, so cache keys agree."""
    import shutil

    from demod_voice.paths import file_identity

    copy = tmp_path / "elsewhere" / joe_voice.name
    copy.parent.mkdir()
    shutil.copy(joe_voice, copy)
    assert file_identity(copy) == file_identity(joe_voice)
    assert str(tmp_path) not in file_identity(copy)
    copy.write_bytes(b"changed")
    assert file_identity(copy) != file_identity(joe_voice)

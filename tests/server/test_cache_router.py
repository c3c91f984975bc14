"""Audio cache and router in process: real SQLite, real files, real Piper (including a broken voice file)."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest

from demod_voice import config
from demod_voice.cache import AudioCache, make_key
from demod_voice.errors import EngineError
from demod_voice.server.router import Router, TTSRequest
from demod_voice.voices import VoiceStore


def test_keys_are_content_addresses():
    a = make_key("Hello   world.", engine="piper", fmt="wav")
    assert a == make_key(" Hello world. ", fmt="wav", engine="piper")
    assert a != make_key("Hello world.", engine="piper", fmt="mp3")
    assert a != make_key("Hello world!", engine="piper", fmt="wav")


def test_lru_eviction_to_size_limit(tmp_path):
    cache = AudioCache(tmp_path / "c", max_bytes=2500)
    for i in range(3):
        cache.put(f"k{i}", bytes([i]) * 1000, {"i": i})
        time.sleep(0.01)
    assert cache.get("k0") is None  # oldest went first
    assert cache.get("k1") is not None  # touch k1: now k2 is least recently used
    time.sleep(0.01)
    cache.put("k3", b"x" * 1000)
    assert cache.get("k2") is None and cache.get("k1").data == bytes([1]) * 1000
    assert cache.stats()["bytes"] <= 2500
    assert len(list((tmp_path / "c").rglob("*.bin"))) == 2
    reopened = AudioCache(tmp_path / "c", max_bytes=2500)  # the index survives a restart
    assert reopened.get("k3").data == b"x" * 1000


def test_invalidation_by_tag(tmp_path):
    cache = AudioCache(tmp_path / "c", max_bytes=10**6)
    cache.put("a", b"1", tag="alice/v")
    cache.put("b", b"2", tag="alice/w")
    assert cache.invalidate("alice/v") == 1
    assert cache.get("a") is None and cache.get("b") is not None


def test_concurrent_get_or_compute_runs_once(tmp_path):
    cache = AudioCache(tmp_path / "c", max_bytes=10**6)
    calls = []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return b"audio", {"engine": "piper"}

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("key", compute))) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert {entry.data for entry, _ in results} == {b"audio"}
    assert sorted(hit for _, hit in results) == [False] + [True] * 5


def test_failed_leader_lets_followers_compute(tmp_path):
    cache = AudioCache(tmp_path / "c", max_bytes=10**6)
    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    entry, hit = cache.get_or_compute("k", lambda: (b"ok", {}))
    assert entry.data == b"ok" and not hit


@pytest.fixture
def cfg(isolated_home, joe_voice, tmp_path):
    """A config whose data dir holds a real voice and a broken copy of it (valid config, truncated model)."""
    cfg = config.load()
    cfg.set("router.breaker_failures", 2, "test")
    cfg.set("router.breaker_cooldown_s", 60.0, "test")
    voices = cfg.data_dir / "voices"
    voices.mkdir(parents=True)
    (voices / "broken.onnx").write_bytes(joe_voice.read_bytes()[:4096])
    shutil.copy(f"{joe_voice}.json", voices / "broken.onnx.json")
    return cfg


def test_router_fallback_breaker_and_audit(cfg, speech_wav):
    store = VoiceStore(cfg.data_dir, "local")
    store.create("hero", engine="piper", piper_voice="broken")
    router = Router(cfg)
    req = TTSRequest("Hello there.", voice="hero", engine="piper", fallback=False)
    for _ in range(2):
        with pytest.raises(EngineError) as err:
            router.run(router.plan(req))
        assert "cannot load Piper voice broken.onnx" in err.value.message
    stats = router.engines()["piper"]
    assert stats["failures"] == 2 and stats["circuit"] == "open"
    # the breaker is open: piper is skipped without being tried
    with pytest.raises(EngineError) as err:
        router.plan(req)
    assert "circuit open" in err.value.message
    assert router.engines()["piper"]["failures"] == 2
    # a working voice on another router (fresh breaker) speaks, and the audit file holds the events
    ok = Router(cfg)
    engine, chunks = ok.run(ok.plan(TTSRequest("Hello there.", voice="en_US-joe-medium", tier="high")))
    assert engine == "piper" and sum(c.duration for c in chunks) > 0.3
    events = [json.loads(line) for line in (cfg.data_dir / "logs" / "audit.jsonl").read_text().splitlines()]
    assert {"engine": "xtts", "reason": "reference missing"}.items() <= events[-1].items()
    assert any(e["reason"] == "circuit open" for e in events)


def test_xtts_profile_without_reference_falls_back(cfg, speech_wav):
    """A cloned voice is never answered by another speaker unasked (#34): the plan fails naming what is
    missing; with allow_other_voice the Piper candidate is kept and marked with the voice it speaks in."""
    from demod_voice.server.voice_identity import VoiceUnavailable

    store = VoiceStore(cfg.data_dir, "local")
    store.create("clone")
    router = Router(cfg)
    with pytest.raises(VoiceUnavailable) as err:
        router.plan(TTSRequest("Hi.", voice="clone"))
    assert "xtts: reference missing" in err.value.message and err.value.status == 400
    plan = router.plan(TTSRequest("Hi.", voice="clone", allow_other_voice=True))
    assert [c.engine for c in plan.candidates] == ["piper"] and plan.candidates[0].speaker == "en_US-joe-medium"
    assert plan.skipped[0][:2] == ("xtts", "reference missing")
    store.add_sample("clone", speech_wav)
    store.auto_reference("clone")
    plan = router.plan(TTSRequest("Hi.", voice="clone", allow_other_voice=True))
    assert plan.skipped[0][0] == "xtts" and plan.skipped[0][1] in ("engine not installed", "model missing")

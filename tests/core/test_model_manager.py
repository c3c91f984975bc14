"""The model manager on its own: one load per key, LRU under ``engines.max_loaded``, an engine's own cap,
idle unload, and a real Piper voice that comes back the same after an unload (issue #33 item 4)."""

from __future__ import annotations

import threading
import time

from demod_voice.synthesis.manager import ModelManager


class Weights:
    """A model stand-in with real memory, ``nbytes`` and ``unload()``, as the engines' models have."""

    def __init__(self, name: str):
        self.name, self.data, self.closed = name, bytearray(1 << 20), False

    @property
    def nbytes(self) -> int:
        return len(self.data)

    def unload(self) -> None:
        self.closed = True


def test_one_load_per_key_even_from_many_threads():
    models, calls = ModelManager(), []

    def load():
        calls.append(1)
        return Weights("a")

    got = []
    threads = [threading.Thread(target=lambda: got.append(models.get("e", ("a",), load))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(m) for m in got}) == 1
    assert models.status()[0]["bytes"] == 1 << 20 and models.loaded("e")


def test_least_recently_used_goes_first_and_engine_caps_hold():
    models = ModelManager(max_loaded=2)
    a = models.get("e", "a", lambda: Weights("a"))
    models.get("e", "b", lambda: Weights("b"))
    models.get("e", "a", lambda: Weights("a2"))  # a used again: b is now the oldest
    models.get("f", "c", lambda: Weights("c"))
    assert [m["model"] for m in models.status()] == ["a", "c"] and not a.closed
    capped = ModelManager()
    first = capped.get("s", 1, lambda: Weights("1"), limit=1)
    capped.get("s", 2, lambda: Weights("2"), limit=1)
    capped.get("t", 3, lambda: Weights("3"), limit=1)
    assert first.closed and [m["model"] for m in capped.status()] == ["2", "3"]


def test_idle_models_are_unloaded_and_come_back():
    models = ModelManager(idle_unload_s=30)
    old = models.get("e", "a", lambda: Weights("a"))
    assert models.unload_idle(now=time.time() + 10) == 0
    assert models.unload_idle(now=time.time() + 31) == 1 and old.closed
    assert models.status() == [] and models.unloads == 1
    new = models.get("e", "a", lambda: Weights("a"))
    assert new is not old and models.loads == 2


def test_piper_reloads_after_unload_with_the_same_audio(joe_voice):
    from demod_voice.engines.piper import engine as piper
    from demod_voice.synthesis.manager import MODELS

    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)  # deterministic by construction
    first = piper.load(joe_voice)
    assert piper.load(joe_voice) is first
    before = b"".join(c.to_pcm16() for c in first.synthesize("Hello there.", options))
    assert any(m["engine"] == "piper" and m["bytes"] > 1_000_000 for m in MODELS.status())
    assert MODELS.unload("piper") >= 1 and not MODELS.loaded("piper")
    second = piper.load(joe_voice)
    assert second is not first
    assert b"".join(c.to_pcm16() for c in second.synthesize("Hello there.", options)) == before

"""Property tests (Hypothesis): generated parameter sets and bodies against the validation layer and the real
HTTP routes. Never a 5xx, never non-finite audio, never an open circuit for another user.

Example counts are small and derandomized (two shared cores, repeatable runs).
"""

from __future__ import annotations

import io
import json
import math
import uuid

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demod_voice import config as config_mod
from demod_voice.errors import ConfigError

FEW = settings(max_examples=12, derandomize=True, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**9, 10**9),
                    st.sampled_from([0, -1, 1e6, 1e308, -5.0, 0.5, 1.0]))
json_values = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=12),
                        st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
PIPER_KEYS = ["length_scale", "noise_scale", "noise_w", "volume", "sentence_silence", "speaker"]
XTTS_KEYS = ["temperature", "top_k", "top_p", "repetition_penalty", "length_penalty"]
params = st.dictionaries(st.sampled_from(PIPER_KEYS + XTTS_KEYS + ["bogus"]), st.one_of(numbers, json_values), max_size=3)


def check_audio(data: bytes) -> None:
    samples, _ = sf.read(io.BytesIO(data), dtype="float32")
    assert len(samples) > 0 and np.isfinite(samples).all()
    assert np.mean(np.abs(samples) >= 0.9999) < 0.01, "full-scale constant samples: non-finite audio was encoded"


# --- the validation layer: the config schema ------------------------------------------------

NUMERIC = [key for key, s in config_mod.SETTINGS.items() if s.type in ("int", "float")]


@FEW
@given(key=st.sampled_from(NUMERIC), value=numbers)
def test_schema_never_accepts_a_non_finite_or_out_of_range_number(key, value):
    setting = config_mod.SETTINGS[key]
    try:
        accepted = config_mod._check(key, value, "property test")
    except ConfigError as exc:
        assert key in exc.message
        return
    assert math.isfinite(accepted)
    assert setting.min is None or accepted >= setting.min
    assert setting.max is None or accepted <= setting.max


def test_every_engine_number_has_a_finite_range():
    for section in ("piper", "xtts", "rvc"):
        for key, setting in config_mod.SETTINGS.items():
            if key.startswith(section + ".") and setting.type in ("int", "float"):
                assert setting.min is not None and setting.max is not None, key
                assert math.isfinite(setting.min) and math.isfinite(setting.max), key


# --- the HTTP routes ---------------------------------------------------------------------------

@FEW
@given(p=params)
def test_generated_params_never_5xx_never_bad_audio(alice, p):
    body = json.dumps({"text": "Short one.", "params": p, "format": "wav", "cache": False})
    res = alice.post("/api/tts", content=body, headers={"Content-Type": "application/json"})
    assert res.status_code < 500, res.text
    if res.status_code == 200:
        check_audio(res.content)
    else:
        assert res.json()["error"]["message"]


body_keys = st.sampled_from(["text", "input", "voice", "engine", "tier", "format", "response_format", "speed", "model",
                             "params", "stream", "language", "cache", "fallback", "rvc", "extra"])
bodies = st.dictionaries(body_keys, json_values, max_size=5).map(lambda d: {**d, "text": str(d.get("text", "Hi."))[:40],
                                                                            "input": str(d.get("input", "Hi."))[:40]})
routes = st.sampled_from(["/api/tts", "/v1/audio/speech", "/api/voices", "/api/voices/x/reference",
                          "/api/voices/x/reference/auto"])


@FEW
@given(route=routes, body=st.one_of(bodies.map(json.dumps), st.binary(max_size=64).map(lambda b: b.decode("latin-1"))))
def test_generated_bodies_never_5xx(alice, route, body):
    method = "PUT" if route.endswith("/reference") else "POST"
    res = alice.request(method, route, content=body.encode("latin-1", "replace"),
                        headers={"Content-Type": "application/json"})
    assert res.status_code < 500, res.text
    if res.status_code == 200 and res.headers.get("content-type", "").startswith("audio/wav"):
        check_audio(res.content)


def test_after_the_barrage_other_users_still_get_piper(alice, bob):
    for _ in range(3):
        alice.post("/api/tts", json={"text": "Hi.", "params": {"sentence_silence": 1e6}})
    res = bob.post("/api/tts", json={"text": f"Fine {uuid.uuid4().hex[:4]}.", "format": "wav"})
    assert res.status_code == 200 and res.headers["x-engine"] == "piper"
    check_audio(res.content)
    assert bob.get("/health").json()["engines"]["piper"]["circuit"] == "closed"

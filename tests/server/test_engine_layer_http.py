"""HTTP through the engine layer: input errors never reach an engine, nor count against its breaker."""

from __future__ import annotations

import httpx
import pytest


def piper_stats(client: httpx.Client) -> dict:
    return client.get("/api/engines").json()["engines"]["piper"]


@pytest.mark.parametrize("params", [{"volume": 1e308}, {"length_scale": -5}, {"sentence_silence": 1e6},
                                    {"noise_scale": "NaN"}, {"bogus": 1}])
def test_bad_parameters_are_400_and_never_count_against_the_engine(alice, params):
    before = piper_stats(alice)
    if params == {"noise_scale": "NaN"}:  # JSON has no NaN literal, but Python's parser accepts one
        res = alice.post("/api/tts", content=b'{"text": "Hi.", "params": {"noise_scale": NaN}}',
                         headers={"content-type": "application/json"})
    else:
        res = alice.post("/api/tts", json={"text": "Hi.", "params": params, "cache": False})
    assert res.status_code == 400, res.text
    after = piper_stats(alice)
    assert (after["requests"], after["failures"], after["circuit"]) == (before["requests"], before["failures"], "closed")

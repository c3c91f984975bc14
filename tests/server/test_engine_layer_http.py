"""HTTP through the engine layer: input errors never reach an engine (or its breaker); clients that leave
take their queued work with them."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.server.conftest import start_server, stop_server


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


def test_clients_that_leave_take_their_queued_requests_with_them(tmp_path):
    """One CPU worker: a long request, then three more whose clients give up while they wait in the queue.
    Only the first ever reaches the engine; it stops early, and the server answers the next client."""
    proc, url = start_server(tmp_path / "home", "server:\n  cpu_workers: 1\n  cache: false\n")
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            long_text = " ".join(f"This is sentence number {i} of a long text." for i in range(60))

            def leave_early(text: str, patience: float) -> None:
                with pytest.raises(httpx.TimeoutException):
                    httpx.post(url + "/api/tts", json={"text": text, "format": "wav"}, timeout=patience)

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                first = pool.submit(leave_early, long_text, 4.0)  # runs; its client leaves mid-way
                time.sleep(0.5)
                queued = [pool.submit(leave_early, text, 1.5) for text in ("One.", "Two.", "Three.")]
                for future in [first, *queued]:
                    future.result()
            deadline = time.monotonic() + 120
            while client.get("/health").json()["active_jobs"] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert client.get("/health").json()["active_jobs"] == 0
            stats = piper_stats(client)
            assert stats["requests"] == 1  # the queued ones were dropped before they ran
            assert stats["successes"] == 0 and stats["failures"] == 0  # the long one was stopped, not failed
            res = client.post("/api/tts", json={"text": "Still here.", "format": "wav"})
            assert res.status_code == 200 and res.headers["x-engine"] == "piper"
    finally:
        stop_server(proc)

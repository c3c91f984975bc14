"""Graceful shutdown: SIGTERM while a request is in flight lets it finish, then the server exits 0."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.server.conftest import start_server, stop_server


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight(tmp_path):
    proc, url = start_server(tmp_path / "home", "server:\n  cache: false\n", ("--no-cache",))
    try:
        text = " ".join(f"Sentence {i} is still being spoken when the server is asked to stop." for i in range(4))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(httpx.post, url + "/api/tts", json={"text": text, "format": "wav"}, timeout=120)
            deadline = time.monotonic() + 60
            while httpx.get(url + "/health").json()["active_jobs"] == 0 and not future.done():
                assert time.monotonic() < deadline
                time.sleep(0.05)
            proc.terminate()  # SIGTERM while synthesis runs
            response = future.result()
        assert response.status_code == 200
        import io

        import soundfile as sf

        samples, sr = sf.read(io.BytesIO(response.content))
        assert len(samples) / sr > 8  # all four sentences, not a truncated answer
        assert proc.wait(60) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/health", timeout=2)
    finally:
        if proc.poll() is None:
            stop_server(proc)

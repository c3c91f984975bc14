"""Clients that leave take their work with them (#18 item 5): a whole-body request whose client has
disconnected is taken out of the device queue, or stopped at its next sentence, and never holds up the
next client. Asserted on the engine work done (the router's per-engine counters), not on timings."""

from __future__ import annotations

import json
import socket
import time

import httpx

from tests.server.conftest import start_server, stop_server


def piper_stats(client: httpx.Client) -> dict:
    return client.get("/api/engines").json()["engines"]["piper"]


def send_and_leave(url: str, text: str) -> socket.socket:
    """Send a complete ``POST /api/tts`` and keep the socket open without reading (close it to leave)."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"text": text, "format": "wav"}).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /api/tts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def wait_idle(client: httpx.Client, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/health").json()["active_jobs"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get("/health").json()["active_jobs"] == 0


def test_clients_that_leave_take_their_queued_and_running_work_with_them(tmp_path, joe_voice):
    """One CPU worker: a long request starts, three more queue behind it; all four clients leave.
    Only the long one ever reached the engine and it stopped early (neither success nor failure); the
    queued three were dropped unrun; the next client is answered by the engine."""
    proc, url = start_server(tmp_path / "home", "server:\n  cpu_workers: 1\n  cache: false\n")
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            before = piper_stats(client)
            long_text = " ".join(f"This is sentence number {i} of a long text." for i in range(80))
            running = send_and_leave(url, long_text)
            deadline = time.monotonic() + 120
            while not client.get("/health").json()["active_jobs"] and time.monotonic() < deadline:
                time.sleep(0.05)  # the long one has left the queue and is running
            queued = [send_and_leave(url, text) for text in ("One.", "Two.", "Three.")]
            time.sleep(0.5)  # they reach the server and wait behind the long one
            for sock in [running, *queued]:
                sock.close()
            wait_idle(client)
            after = piper_stats(client)
            assert after["requests"] - before["requests"] == 1  # the queued ones never ran
            assert (after["successes"], after["failures"]) == (before["successes"], before["failures"])
            assert after["circuit"] == "closed"

            res = client.post("/api/tts", json={"text": "Still here.", "format": "wav"})
            assert res.status_code == 200 and res.headers["x-engine"] == "piper"
            assert piper_stats(client)["successes"] == before["successes"] + 1
    finally:
        stop_server(proc)

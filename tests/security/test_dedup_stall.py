"""Issue 24 item 3: in-flight de-duplication never makes a request wait on a stalled leader.

Before: a client that asked for a streamed WAV and never read it held its claim on the answer, and
every identical request waited for it with no timeout (checked at 150 s with request_timeout_s 120).
Now a follower waits at most half of ``server.request_timeout_s`` and then synthesises itself, and a
leader whose client takes nothing for ``server.send_timeout_s`` is cut off (its claim released).
"""

from __future__ import annotations

import json
import socket
import time

import httpx

from tests.security.conftest import KEYS, server_config
from tests.server.conftest import start_server, stop_server

REQUEST_TIMEOUT_S = 20
SEND_TIMEOUT_S = 2
# 20 one-word sentences, each with 10 s of silence: ~9 MB of streamed WAV, more than the socket buffers hold
BODY = {"text": "Yes. " * 20, "format": "wav", "stream": True, "params": {"sentence_silence": 10}}


def _stalled_client(port: int) -> socket.socket:
    """Sends the request, then never reads (a tiny receive buffer so the server's sends block soon)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    body = json.dumps(BODY).encode()
    sock.sendall(b"POST /api/tts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {KEYS['alice']}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def test_a_follower_of_a_stalled_leader_is_answered_within_the_timeout(tmp_path, joe_voice):
    extra = f"  request_timeout_s: {REQUEST_TIMEOUT_S}\n  send_timeout_s: {SEND_TIMEOUT_S}\n"
    config = server_config().replace("  cpu_workers: 2\n", "  cpu_workers: 2\n" + extra)
    proc, url = start_server(tmp_path, config, ("--preload",))
    port = int(url.rsplit(":", 1)[1])
    try:
        leader = _stalled_client(port)
        time.sleep(1.5)  # the leader holds the claim and streams into full buffers
        started = time.monotonic()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"},
                          timeout=REQUEST_TIMEOUT_S * 3) as c:
            with c.stream("POST", "/api/tts", json=BODY) as r:
                status = r.status_code
                first_byte = time.monotonic() - started
                size = sum(len(piece) for piece in r.iter_bytes())
            whole = time.monotonic() - started
            assert status in (200, 504), status
            assert first_byte < REQUEST_TIMEOUT_S, first_byte
            # the follower's own synthesis runs in what is left of its time: done (or 504) within the timeout
            assert whole < REQUEST_TIMEOUT_S + 2, whole
            if status == 200:  # whole, or cut cleanly at the deadline (#35 item 3): a WAV header and audio
                assert size > 44
            assert c.get("/health").status_code == 200
        # the stalled leader was cut off: its connection ends (EOF) before the whole answer arrived
        leader.settimeout(30)
        received = 0
        while piece := leader.recv(65536):
            received += len(piece)
        leader.close()
        assert received < 8_000_000, received
        assert proc.poll() is None
    finally:
        stop_server(proc)

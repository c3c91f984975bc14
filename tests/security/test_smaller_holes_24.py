"""Issue 24 item 8 (the smaller holes): typed voice, multipart errors, public /health, file modes.

Before: ``"voice": {"id": 5}`` gave 500; a garbage multipart body got Starlette's ``{"detail"}`` 400
and was then read to its end on a kept-alive connection; public ``/health`` showed cache counters,
active jobs and the STT model's path; samples, cache files and the audit log were 0644 in 0755 folders.
"""

from __future__ import annotations

import io
import socket
import stat
import time

import httpx
import numpy as np
import soundfile as sf

from tests.security.conftest import KEYS


def test_a_non_string_voice_is_a_client_error_in_the_service_shape(alice):
    r = alice.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello.", "voice": {"id": 5}})
    assert r.status_code == 422, r.text  # the wrong type: the body does not fit the schema
    error = r.json()["error"]
    assert "voice" in error["message"] and error["param"].startswith("voice") and error["code"] == "invalid_type"
    assert error["type"] == "invalid_request_error"
    ok = alice.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello.", "voice": {"id": "alloy"},
                                              "response_format": "wav"})
    assert ok.status_code == 200, ok.text


def test_garbage_multipart_is_answered_in_the_service_shape_and_the_connection_closed(server):
    """A chunked 'multipart' body of garbage: an early error, and the rest of the body is never read."""
    sock = socket.create_connection(("127.0.0.1", server["port"]))
    sock.settimeout(30)
    head = (b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n"
            + f"Authorization: Bearer {KEYS['alice']}\r\n\r\n".encode())
    bad_part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\x00bad: header\r\n\r\n'
    sock.sendall(head + f"{len(bad_part):x}\r\n".encode() + bad_part + b"\r\n")
    junk = b"\xff" * 65536
    chunk = f"{len(junk):x}\r\n".encode() + junk + b"\r\n"
    sent = 0
    answer = b""
    sock.setblocking(False)
    deadline = time.monotonic() + 60
    closed = False
    try:
        while time.monotonic() < deadline and sent < 200 * 1024 * 1024:
            try:
                piece = sock.recv(65536)
                if not piece:
                    closed = True
                    break
                answer += piece
            except BlockingIOError:
                pass
            except ConnectionResetError:  # closed while junk was still unread: the kernel resets it
                closed = True
                break
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    finally:
        sock.close()
    assert closed, f"the server kept reading: {sent} bytes sent"
    assert sent < 50 * 1024 * 1024, sent
    head_part, _, body = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 400"), answer[:200]  # the parse error, not the body limit
    assert b'"error"' in body and b'"detail"' not in body, body[:300]


def test_public_health_shows_status_and_version_only(server, alice):
    public = httpx.get(server["url"] + "/health", timeout=30).json()
    assert set(public) == {"status", "version"}, public
    wrong_key = httpx.get(server["url"] + "/health", headers={"Authorization": "Bearer nope-nope-nope-nope"},
                          timeout=30).json()
    assert set(wrong_key) == {"status", "version"}
    detailed = alice.get("/health").json()
    assert "active_jobs" in detailed and "engines" in detailed and "stt" in detailed


def test_server_files_are_private(server, alice):
    assert alice.post("/api/voices", json={"name": "private"}).status_code == 201
    t = np.arange(32000) / 16000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 200 * t)).astype("float32"), 16000, format="WAV")
    assert alice.post("/api/voices/private/samples", files={"file": ("a.wav", buf.getvalue())}).status_code == 201
    assert alice.post("/api/tts", json={"text": "Private files.", "format": "wav"}).status_code == 200
    home = server["home"]
    checked = 0
    for root in (home / "data" / "demod-voice", home / "cache" / "demod-voice"):
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if path.is_symlink():
                continue
            if path.is_dir():
                assert mode == 0o700, (path, oct(mode))
            else:
                assert mode == 0o600, (path, oct(mode))
            checked += 1
    assert checked > 5
    assert list((home / "data" / "demod-voice").rglob("*.wav")), "no sample written"

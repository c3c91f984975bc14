"""Hostile HTTP clients against the real server (uvicorn on loopback): the guards run before the body is read.

Items 2, 5 and 6 of issue #18: auth before the body, a body limit enforced while bytes arrive (chunked or
not), slow bodies time out, Host allow-list (DNS rebinding), cross-origin state changes refused, CORS only
for allowed origins, offline /docs, per-user cache scope and audit details.
"""

from __future__ import annotations

import socket
import uuid

import httpx

from tests.security.conftest import ALLOWED_ORIGIN, BODY_TIMEOUT, KEYS, MAX_BODY, client


def raw_request(server, head: str, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server["port"]), timeout=timeout)
    sock.sendall(head.encode("latin-1"))
    return sock


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    """(status, raw response): the headers, then the body up to its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return int(data.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:6]}"


# --- item 2: auth before the body; limits while bytes arrive ---------------------------------

def test_unauthenticated_chunked_request_is_refused_before_any_body_byte(server):
    sock = raw_request(server, f"POST /api/tts HTTP/1.1\r\nHost: 127.0.0.1:{server['port']}\r\n"
                               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    with sock:
        status, data = read_status(sock)  # not one body byte was sent
    assert status == 401, data
    assert b"www-authenticate: Bearer" in data.lower().replace(b"bearer", b"Bearer")


def test_chunked_body_is_cut_at_the_limit_with_413(server):
    sock = raw_request(server, f"POST /api/tts HTTP/1.1\r\nHost: 127.0.0.1:{server['port']}\r\n"
                               f"Authorization: Bearer {KEYS['alice']}\r\nContent-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 50_000
    sent = 0
    with sock:
        while sent <= MAX_BODY + len(chunk):  # a little past the limit, far short of the 200 MB of the probe
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        status, data = read_status(sock)  # answered without the body ever ending
    assert status == 413, data
    assert b"request_too_large" in data


def test_declared_oversize_body_is_refused_without_reading_it(server):
    sock = raw_request(server, f"POST /api/voices/v/samples HTTP/1.1\r\nHost: 127.0.0.1:{server['port']}\r\n"
                               f"Authorization: Bearer {KEYS['alice']}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                               "Content-Length: 209715200\r\n\r\n")
    with sock:
        status, _ = read_status(sock)
    assert status == 413


def test_stalled_body_times_out_with_408(server):
    sock = raw_request(server, f"POST /api/tts HTTP/1.1\r\nHost: 127.0.0.1:{server['port']}\r\n"
                               f"Authorization: Bearer {KEYS['alice']}\r\nContent-Type: application/json\r\n"
                               "Content-Length: 1000\r\n\r\n{\"text\": ", timeout=BODY_TIMEOUT + 20)
    with sock:
        status, _ = read_status(sock)
    assert status == 408


def test_server_still_serves_after_the_abuse(alice):
    assert alice.get("/api/voices").status_code == 200


# --- item 5: hosts, origins, CORS, offline docs ------------------------------------------

def test_dns_rebinding_host_is_refused(server, alice):
    rebound = alice.get("/api/voices", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "invalid_host"
    assert rebound.json()["error"]["type"] == "invalid_request_error"
    for host in (f"localhost:{server['port']}", f"127.0.0.1:{server['port']}", "localhost"):
        assert alice.get("/api/voices", headers={"Host": host}).status_code == 200, host


def test_cross_origin_state_changes_are_refused(server, alice, tmp_path):
    name = f"x{uuid.uuid4().hex[:8]}"
    evil = {"Origin": "http://evil.example"}
    created = alice.post("/api/voices", json={"name": name, "engine": "piper"}, headers=evil)
    assert created.status_code == 403 and created.json()["error"]["code"] == "cross_origin_refused"
    assert created.json()["error"]["type"] == "permission_error"
    assert name not in [v["id"] for v in alice.get("/api/voices").json()["voices"]]
    # the legitimate owner makes the voice; the hostile page then tries body-less and multipart requests
    assert alice.post("/api/voices", json={"name": name, "engine": "piper"}).status_code == 201
    assert alice.post(f"/api/voices/{name}/reference/auto", headers=evil).status_code == 403
    upload = alice.post(f"/api/voices/{name}/samples", files={"file": ("a.wav", b"RIFF0000WAVE")}, headers=evil)
    assert upload.status_code == 403
    no_origin = alice.post(f"/api/voices/{name}/reference/auto", headers={"Sec-Fetch-Site": "cross-site"})
    assert no_origin.status_code == 403
    assert alice.get(f"/api/voices/{name}/samples").json()["samples"] == []
    # the bundled page is same-origin, and an allowed origin passes with a CORS answer
    same = alice.delete(f"/api/voices/{name}", headers={"Origin": server["url"], "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200
    allowed = alice.post("/api/voices", json={"name": name, "engine": "piper"}, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 201
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    alice.delete(f"/api/voices/{name}")


def test_cors_is_answered_only_for_allowed_origins(alice):
    def preflight(origin: str) -> httpx.Response:
        return alice.options("/api/tts", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "authorization,content-type"})

    ok = preflight(ALLOWED_ORIGIN)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    bad = preflight("http://evil.example")
    assert "access-control-allow-origin" not in bad.headers
    read = alice.get("/api/voices", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in read.headers


def test_docs_are_served_without_a_cdn(server):
    with httpx.Client(base_url=server["url"], timeout=30) as anonymous:
        for page in ("/docs", "/redoc"):
            html = anonymous.get(page)
            assert html.status_code == 200
            assert "cdn." not in html.text and "googleapis" not in html.text
            assert "/static-offline-docs/" in html.text
        assert anonymous.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
        assert anonymous.get("/static-offline-docs/redoc.standalone.js").status_code == 200
        assert anonymous.get("/openapi.json").json()["info"]["title"] == "demod-voice"


# --- item 6: no cross-user leaks ---------------------------------------------------------

def test_cache_hits_are_scoped_per_user(alice, bob):
    body = {"model": "tts-1", "input": unique("A shared voice says this."), "voice": "alloy", "response_format": "wav"}
    first = alice.post("/v1/audio/speech", json=body)
    again = alice.post("/v1/audio/speech", json=body)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    other = bob.post("/v1/audio/speech", json=body)
    assert other.status_code == 200 and other.headers["x-cache"] == "miss"


def test_engine_audit_shows_only_the_callers_events(alice, bob, root):
    secret = f"secret{uuid.uuid4().hex[:6]}"
    assert alice.post("/api/voices", json={"name": secret, "engine": "xtts"}).status_code == 201
    spoken = alice.post("/api/tts", json={"text": unique("Falls back to Piper."), "voice": secret,
                                          "allow_other_voice": True})  # another speaker only when asked (#34)
    assert spoken.status_code == 200 and "xtts" in spoken.headers["x-fallback"]
    mine = alice.get("/api/engines").json()
    assert any(e.get("voice") == secret for e in mine["fallbacks"])
    theirs = bob.get("/api/engines").json()
    assert secret not in str(theirs) and "alice" not in str(theirs["fallbacks"])
    assert all("last_error" not in status for status in theirs["engines"].values())
    admin = root.get("/api/engines").json()
    assert any(e.get("voice") == secret and e.get("user") == "alice" for e in admin["fallbacks"])


def test_keys_are_checked_against_hashes(server):
    with client(server, None, headers={"Authorization": "Bearer " + KEYS["alice"][:-1] + "X"}) as wrong:
        assert wrong.get("/api/voices").status_code == 401
    with client(server, None) as anonymous:
        assert anonymous.get("/api/voices").status_code == 401
        assert anonymous.get("/health").status_code == 200
    config_text = (server["home"] / "server.yaml").read_text()
    assert all(key not in config_text for key in KEYS.values())



def test_same_origin_rules():
    from demod_voice.server.middleware import HostGuard, same_origin

    assert same_origin("http://127.0.0.1:5002", "127.0.0.1:5002", "http")
    assert same_origin("https://voice.example.org", "voice.example.org", "http")  # behind a TLS proxy
    assert not same_origin("http://localhost:8080", "localhost:5002", "http")  # another app on this machine
    assert not same_origin("http://evil.example", "voice.example.org", "http")
    assert not same_origin("null", "127.0.0.1:5002", "http")
    guard = HostGuard(None, ["voice.example.org"], "127.0.0.1")
    assert all(guard.allows(h) for h in ("localhost:5002", "[::1]:5002", "10.1.2.3", "VOICE.example.org.", None))
    assert not any(guard.allows(h) for h in ("attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io"))

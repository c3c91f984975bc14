"""Idle connections cannot lock everyone out (#35 item 4): a server under ``ulimit -n 256`` with Wyoming on,
300 connections that never send a request. ``/health`` and Wyoming still answer, the idle connections are
closed after ``server.header_timeout_s``, and the log stays short (accept errors at most once per interval)."""

from __future__ import annotations

import json
import socket
import time

import httpx

from tests.security.conftest import server_config
from tests.server.conftest import free_port, start_server, stop_server

HEADER_TIMEOUT = 3.0
IDLE = 300


def _describe(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(json.dumps({"type": "describe"}).encode() + b"\n")
        return sock.makefile("rb").readline()


def test_idle_connections_do_not_lock_out_health_or_wyoming(tmp_path, joe_voice):
    wyoming_port = free_port()
    config = server_config().replace("  cpu_workers: 2\n", f"  cpu_workers: 2\n  header_timeout_s: {HEADER_TIMEOUT}\n")
    proc, url = start_server(tmp_path, config, ("--wyoming", f"tcp://127.0.0.1:{wyoming_port}"), nofile=256)
    port = int(url.rsplit(":", 1)[1])
    idle: list[socket.socket] = []
    try:
        started = time.monotonic()
        while len(idle) < IDLE and time.monotonic() - started < 30:  # bounded by count and time
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                time.sleep(0.05)
        assert len(idle) == IDLE
        t = time.monotonic()
        health = httpx.get(url + "/health", timeout=10)
        assert health.status_code == 200, health.text
        assert time.monotonic() - t < 5
        assert b'"info"' in _describe(wyoming_port)
        # after the header timeout, no idle connection is left open: each reads EOF (or a reset / 503 refusal)
        time.sleep(HEADER_TIMEOUT + 1.5)
        still_open = 0
        for sock in idle:
            sock.settimeout(0.05)
            try:
                data = sock.recv(4096)
                if data and b"503" not in data:
                    still_open += 1
            except TimeoutError:
                still_open += 1
            except OSError:
                pass
        assert still_open == 0
        # the server keeps serving, and its log is not flooded
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        log = (tmp_path / "server.log").read_bytes()
        assert len(log) < 20_000, log[-2000:]
        assert log.count(b"out of system resource") <= 3
    finally:
        for sock in idle:
            sock.close()
        stop_server(proc)

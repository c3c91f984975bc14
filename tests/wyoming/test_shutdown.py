"""SIGTERM closes idle Wyoming connections at once and waits only for requests in flight (#34 E)."""

from __future__ import annotations

import socket
import time

from tests.wyoming.conftest import free_port, launch, tcp_open, wait_until, write_config


def test_sigterm_with_an_idle_client_exits_within_8_s(tmp_path, joe_voice, whisper_path):
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home, whisper_path, None)
    port = free_port()
    proc = launch(home, config, ["--no-http", "--wyoming", f"tcp://127.0.0.1:{port}"])
    try:
        wait_until(proc, home, lambda: tcp_open(port), "Wyoming port")
        idle = socket.create_connection(("127.0.0.1", port))  # connected, says nothing (wyoming.idle_timeout_s: 30)
        idle.sendall(b'{"type": "describe"}\n')
        idle.settimeout(30)
        assert b'"info"' in idle.recv(65536)  # one request answered; now the connection is idle
        started = time.monotonic()
        proc.terminate()
        code = proc.wait(20)
        took = time.monotonic() - started
        assert code == 0, (home / "server.log").read_text()
        assert took < 8, f"exited after {took:.1f} s"
        idle.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

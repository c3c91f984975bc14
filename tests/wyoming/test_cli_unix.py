"""`serve --no-http --wyoming unix://...`, the CLI's usage errors, `health` reporting STT, and zeroconf."""

from __future__ import annotations

import grp
import json
import os
import stat

import pytest
from wyoming.audio import AudioStop
from wyoming.client import AsyncClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from tests.wyoming.conftest import collect, free_port, launch, run, stop, tcp_open, wait_until, write_config


def test_usage_errors(cli, tmp_path):
    proc = cli("serve", "--no-http")
    assert proc.returncode == 2 and "--no-http leaves nothing to serve" in proc.stderr.decode()
    for uri in ("http://x:1", "tcp://127.0.0.1", "tcp://:99", "unix://", "tcp://h:notaport"):
        proc = cli("serve", "--wyoming", uri, "--no-http")
        assert proc.returncode == 2, uri
        assert proc.stderr.decode().startswith("error: Wyoming address"), proc.stderr.decode()
    proc = cli("serve", "--zeroconf")
    assert proc.returncode == 2 and "--zeroconf advertises the Wyoming server" in proc.stderr.decode()
    not_a_socket = tmp_path / "file.txt"
    not_a_socket.write_text("keep me")
    proc = cli("serve", "--no-http", "--wyoming", f"unix://{not_a_socket}")
    assert proc.returncode == 2 and "is not a socket" in proc.stderr.decode()
    assert not_a_socket.read_text() == "keep me"


def test_health_reports_stt(cli, whisper_path):
    proc = cli("health", "--json")
    report = json.loads(proc.stdout)
    stt = next(c for c in report["checks"] if c["name"] == "stt")
    assert stt["ok"] is False and stt["data"]["model"] == "whisper-base.en"
    assert "models pull whisper-base.en" in stt["detail"] and "place config.json, model.bin" in stt["detail"]
    proc = cli("health", "--json", env={"DEMOD_VOICE_STT__MODEL": str(whisper_path)})
    stt = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "stt")
    assert stt["ok"] is True and stt["data"]["model_path"] == str(whisper_path)


def test_unix_socket_without_http(tmp_path, joe_voice, whisper_path):
    home = tmp_path / "home"
    home.mkdir()
    sock = home / "run" / "wyoming.sock"
    group = other_group()
    config = write_config(home, whisper_path, None, extra=f"wyoming:\n  socket_group: {group.gr_name}\n")
    http_port = free_port()
    proc = launch(home, config, ["--no-http", "--wyoming", f"unix://{sock}", "--port", str(http_port)])
    try:
        wait_until(proc, home, sock.exists, "Wyoming unix socket")
        info = os.lstat(sock)
        assert stat.S_ISSOCK(info.st_mode)
        # serve's umask 077 would leave it 0700; its group (Home Assistant's, say) may connect.
        assert stat.S_IMODE(info.st_mode) == 0o660 and info.st_gid == group.gr_gid, (oct(info.st_mode), info.st_gid)
        assert not tcp_open(http_port)  # no HTTP

        async def go():
            async with AsyncClient.from_uri(f"unix://{sock}") as client:
                await client.write_event(Describe().event())
                described = Info.from_event(await client.read_event())
                await client.write_event(Synthesize(text="Over a unix socket.").event())
                return described, await collect(client, {"audio-stop", "error"})

        described, events = run(go())
        assert "en_US-joe-medium" in {v.name for v in described.tts[0].voices}
        assert AudioStop.is_type(events[-1].type) and any(e.type == "audio-chunk" for e in events)
    finally:
        assert stop(proc) == 0  # SIGTERM: drained and exited cleanly
    assert not sock.exists()  # removed on the way out


def other_group() -> grp.struct_group:
    """A group the test may give a file, not the user's primary one where possible (root: any)."""
    mine = set(os.getgroups()) if os.getuid() else {g.gr_gid for g in grp.getgrall()}
    others = sorted(mine - {os.getgid()})
    return grp.getgrgid(others[0] if others else os.getgid())


def test_zeroconf_registers_on_loopback(tmp_path, joe_voice, whisper_path):
    pytest.importorskip("zeroconf", reason="the zeroconf package is not installed (optional: pip install zeroconf)")
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home, whisper_path, None, extra="wyoming:\n  zeroconf_name: demod-voice-test\n")
    port = free_port()
    proc = launch(home, config, ["--no-http", "--wyoming", f"tcp://127.0.0.1:{port}", "--zeroconf", "-v"])
    try:
        wait_until(proc, home, lambda: "advertised demod-voice-test" in (home / "server.log").read_text(),
                   "zeroconf registration")
        assert tcp_open(port)

        async def resolve():
            from zeroconf import IPVersion
            from zeroconf.asyncio import AsyncZeroconf

            browser = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
            try:
                return await browser.async_get_service_info("_wyoming._tcp.local.",
                                                            "demod-voice-test._wyoming._tcp.local.", timeout=5000)
            finally:
                await browser.async_close()

        found = run(resolve())
        assert found is not None and found.port == port and found.parsed_addresses() == ["127.0.0.1"]
    finally:
        assert stop(proc) == 0


"""Issue 24 item 2: decompression bombs. A ~1 MB FLAC of two hours of silence to every upload route.

Before: the upload was decoded whole (on the event loop for STT and convert) before any duration
check: +1.35 GB and /health blocked 9 s for STT, a 201 and a 691 MB float WAV on disk for a voice
sample, and /api/convert decoded even for an unknown voice. Now uploads are decoded block by block
under ``stt.max_audio_s``, ``voices.max_sample_s`` and ``rvc.max_input_s``, off the event loop, after
the cheap checks (unknown voice -> 404).
"""

from __future__ import annotations

import io
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from demod_voice import audio as audio_mod
from demod_voice.errors import LimitError
from tests.security.conftest import KEYS, server_config
from tests.server.conftest import start_server, stop_server


def silent_flac(seconds: float, rate: int = 16000) -> bytes:
    """Hours of silence in about a megabyte (FLAC compresses silence to almost nothing)."""
    buf = io.BytesIO()
    block = np.zeros(rate * 60, dtype="int16")
    with sf.SoundFile(buf, "w", rate, 1, format="FLAC", subtype="PCM_16") as fh:
        for _ in range(int(seconds // 60)):
            fh.write(block)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = silent_flac(2 * 3600)
    assert len(data) < 3_000_000
    return data


@pytest.fixture(scope="module")
def big_upload_server(tmp_path_factory, joe_voice):
    """The security server's settings, but with the default 20 MB upload limit so the bomb reaches decoding."""
    home = tmp_path_factory.mktemp("bomb-server")
    # RVC's shared weights and the voice are present (never loaded: the upload is refused first), so
    # /api/convert gets as far as decoding instead of answering 503 "weights missing".
    for name in ("hubert.pt", "rmvpe.pt"):
        (home / name).write_bytes(b"never loaded: the upload is refused first")
    rvc_config = f"rvc:\n  hubert: '{home / 'hubert.pt'}'\n  rmvpe: '{home / 'rmvpe.pt'}'\n"
    config = server_config(rvc_config).replace("  max_body_bytes: 200000\n", "").replace("  max_upload_mb: 0.1\n", "")
    rvc = home / "data" / "demod-voice" / "rvc-voices" / "known"
    rvc.mkdir(parents=True)
    (rvc / "model.pth").write_bytes(b"never loaded: the upload is refused first")
    proc, url = start_server(home, config)
    yield {"url": url, "proc": proc, "home": home}
    stop_server(proc)


def _peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_decode_upload_refuses_while_decoding():
    with pytest.raises(LimitError) as err:
        audio_mod.decode_upload(silent_flac(600), "upload 'x.flac'", 60, "voices.max_sample_s")
    assert err.value.status == 413 and "longer than 60 s" in err.value.message
    ok = audio_mod.decode_upload(silent_flac(60), "upload", 61, "voices.max_sample_s")
    assert ok.duration == pytest.approx(60.0)


def test_bomb_to_every_upload_route_is_refused_quickly_and_the_server_keeps_serving(big_upload_server, bomb):
    url, pid = big_upload_server["url"], big_upload_server["proc"].pid
    headers = {"Authorization": f"Bearer {KEYS['alice']}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        assert c.post("/api/voices", json={"name": "mine"}).status_code == 201
        routes = [
            ("/v1/audio/transcriptions", {"model": "whisper-1"}, (413,)),
            ("/v1/audio/translations", {"model": "whisper-1"}, (413,)),
            ("/api/voices/mine/samples", {}, (413,)),
            ("/api/voices/nobody/samples", {}, (404,)),
            ("/api/convert", {"voice": "unknown-voice"}, (404,)),
            ("/api/convert", {"voice": "known"}, (413,)),
        ]
        health_times: list[float] = []
        stop = threading.Event()

        def poll_health() -> None:
            with httpx.Client(base_url=url, timeout=30) as h:
                while not stop.is_set():
                    started = time.monotonic()
                    assert h.get("/health").status_code == 200
                    health_times.append(time.monotonic() - started)
                    time.sleep(0.02)

        rss_before = _peak_rss_mb(pid)
        poller = threading.Thread(target=poll_health, daemon=True)
        poller.start()
        waited = time.monotonic() + 30  # the poller is answered once before the bombs go (they may take < 1 s)
        while not health_times and time.monotonic() < waited:
            time.sleep(0.01)
        try:
            for route, form, statuses in routes:
                started = time.monotonic()
                r = c.post(route, data=form, files={"file": ("bomb.flac", bomb, "audio/flac")})
                took = time.monotonic() - started
                assert r.status_code in statuses, (route, r.status_code, r.text)
                assert took < 2.0, (route, took)
                if r.status_code == 413:
                    assert "longer than" in r.json()["error"]["message"], r.text
        finally:
            stop.set()
            poller.join(30)
        growth = _peak_rss_mb(pid) - rss_before
        assert growth < 100, f"peak RSS grew {growth:.0f} MB"
        assert health_times and max(health_times) < 1.0, f"/health worst {max(health_times):.3f} s"
        assert not list((big_upload_server["home"] / "data").rglob("profiles/alice/voices/mine/samples/*.wav"))
        # a sample within voices.max_sample_s is still accepted
        ok = _tone_flac(5)
        r = c.post("/api/voices/mine/samples", files={"file": ("ok.flac", ok, "audio/flac")})
        assert r.status_code == 201, r.text


def _tone_flac(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 180 * t)).astype("float32"), rate, format="FLAC")
    return buf.getvalue()


def test_cli_add_sample_is_bounded_too(isolated_home, tmp_path):
    from tests.helpers import run_cli

    path = tmp_path / "long.flac"
    path.write_bytes(silent_flac(600))
    assert run_cli("voices", "add", "v").returncode == 0
    proc = run_cli("voices", "samples", "add", "v", path)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "longer than 60 s" in err and "voices.max_sample_s" in err

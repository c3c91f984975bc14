"""Text no engine can take is the client's error, never an engine failure (issue #35 item 1).

Before: a NUL in the text gave 503 "Piper synthesis failed: ValueError: embedded null character", a lone
surrogate 503 with UnicodeEncodeError, and three of them opened Piper's circuit for every user -- from
Wyoming, which needs no key, too. Now such text is refused before any engine runs, in every front end, and
an origin's engine failures only open that origin's circuit.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from demod_voice.errors import InputError
from demod_voice.text import check_speakable, require_text
from tests.helpers import cli_env
from tests.security.conftest import client

UNSPEAKABLE = ["a\u0000b", "lone \ud800 surrogate", "bell \u0007 ring", "delete\u007f", "c1 \u0085 control"]


@pytest.mark.parametrize("text", UNSPEAKABLE, ids=["nul", "surrogate", "bell", "del", "c1"])
def test_text_layer_refuses_with_position(text):
    with pytest.raises(InputError) as info:
        require_text(text)
    assert "U+" in info.value.message and "character" in info.value.message
    assert info.value.code == "invalid_characters"


def test_ordinary_whitespace_and_unicode_pass():
    assert check_speakable("Tab\there,\nnew line\r\n and ünïcödé — “quotes”.") .startswith("Tab")


def test_http_refuses_then_serves(server):
    """NUL and surrogates give 400 again and again (more than breaker_failures), and Piper still answers."""
    with client(server, "alice") as http:
        for _ in range(2):
            for text in ("a\u0000b", "x\ud800y"):
                body = json.dumps({"model": "tts-1", "input": text, "voice": "alloy"})  # json escapes the surrogate
                response = http.post("/v1/audio/speech", content=body, headers={"Content-Type": "application/json"})
                assert response.status_code == 400, response.text
                error = response.json()["error"]
                assert error["code"] == "invalid_characters" and error["type"] == "invalid_request_error"
                assert "U+" in error["message"]
        ok = http.post("/v1/audio/speech", json={"model": "tts-1", "input": "Still speaking.", "voice": "alloy",
                                                 "response_format": "wav"})
        assert ok.status_code == 200 and len(ok.content) > 10_000
    with client(server, "root") as admin:
        piper = admin.get("/api/engines").json()["engines"]["piper"]
        assert piper["circuit"] == "closed" and piper["consecutive_failures"] == 0


def test_cli_refuses_with_exit_2(joe_voice, tmp_path):
    out = tmp_path / "x.wav"
    proc = subprocess.run([sys.executable, "-m", "demod_voice", "piper-infer", "en_US-joe-medium", "-", "-o", str(out)],
                          input=b"before\x00after", capture_output=True, env=cli_env(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.decode().startswith("error: ") and "U+0000" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    assert not out.exists()


def test_wyoming_failures_have_their_own_circuit(tmp_path, joe_voice):
    """A failing engine opened by Wyoming requests leaves the HTTP origin's circuit closed, and the other way."""
    from demod_voice import config
    from demod_voice.server.router import Router
    from demod_voice.synthesis.requests import Candidate, Fallback

    cfg = config.load(flags={"paths.data_dir": str(tmp_path / "data"), "paths.cache_dir": str(tmp_path / "cache"),
                             "router.breaker_failures": 2, "router.breaker_cooldown_s": 60},
                      environ={}, user_file=tmp_path / "none.yaml")
    router = Router(cfg)

    def broken():
        raise RuntimeError("the engine itself broke")

    for _ in range(3):
        with pytest.raises(Fallback):
            router.attempt(Candidate("piper", "1", "cpu", broken, origin="wyoming"))
    # Wyoming's circuit is open: a Wyoming request is refused, an HTTP request is planned on Piper.
    from demod_voice.errors import EngineError
    from demod_voice.synthesis.requests import TTSRequest

    with pytest.raises(EngineError, match="circuit open"):
        router.plan(TTSRequest(text="Hello.", origin="wyoming"))
    http_plan = router.plan(TTSRequest(text="Hello."))
    assert [c.engine for c in http_plan.candidates] == ["piper"]
    assert router.engines()["piper"]["circuit"] == "closed"
    assert router.engines()["piper"]["failures"] == 3


def test_wyoming_nul_text_gets_error_event(tmp_path, joe_voice):
    """Over Wyoming the same text is an ``error`` event, and a normal synthesize afterwards still speaks."""
    pytest.importorskip("wyoming")
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize

    from tests.security.test_wyoming_limits import make_cfg, serve

    cfg = make_cfg(tmp_path, **{"router.breaker_failures": 1})

    async def body(server):
        for text in ("a\u0000b", "a\u0000b", "Hello there."):
            async with AsyncTcpClient("127.0.0.1", server.port) as conn:
                await conn.write_event(Synthesize(text=text).event())
                kinds = []
                while True:
                    event = await asyncio.wait_for(conn.read_event(), 60)
                    if event is None:
                        break
                    kinds.append(event.type)
                    if event.type in ("error", "audio-stop"):
                        if event.type == "error":
                            assert "U+0000" in event.data["text"]
                        break
                assert kinds[-1] == ("audio-stop" if text == "Hello there." else "error"), kinds
        return True

    assert serve(cfg, body)

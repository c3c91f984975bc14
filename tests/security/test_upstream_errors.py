"""GPT-SoVITS answering badly (#35 item 7): an error status, garbage, a bomb or too much is the other server's
fault, an ``UpstreamError`` (502 over HTTP) in our words, with its URL and its own text kept in ``internal`` for
the audit log and admins; a server that is not there or never answers is a plain engine failure or a timeout
(503). The GPT-SoVITS side is the fake upstream on loopback, the code is the engine's own client."""

from __future__ import annotations

import time

import pytest

from demod_voice.engines.gpt_sovits import process
from demod_voice.errors import EngineError, UpstreamError
from demod_voice.server.schemas import status_for
from tests.security.fake_upstream import SECRET, Upstream


@pytest.fixture(scope="module")
def upstream():
    up = Upstream()
    yield up
    up.close()


def _call(**extra) -> process.TtsCall:
    return process.TtsCall(text="Hello.", text_lang="en", ref_audio_path="/srv/ref.wav", prompt_text="Hi.",
                           prompt_lang="en", top_k=5, top_p=1.0, temperature=1.0, speed_factor=1.0, **extra)


def _speak(url: str, call: process.TtsCall | None = None, timeout: float = 10.0):
    return list(process.synthesize(url, call or _call(), timeout, max_bytes=1 << 20, max_seconds=60))


@pytest.mark.parametrize(("mode", "words"), [("error", "failed (HTTP 500)"), ("garbage", "not audio we can decode"),
                                             ("bomb", "longer than 60 s"), ("huge", "announced 2147483648 bytes"),
                                             ("huge-chunked", "sent more than")])
def test_a_bad_answer_is_a_502_in_our_words(upstream, mode, words):
    url = f"{upstream.url}/{mode}"
    with pytest.raises(UpstreamError) as caught:
        _speak(url)
    exc = caught.value
    assert words in exc.message and status_for(exc) == 502
    assert SECRET not in str(exc) and "127.0.0.1" not in str(exc) and "object at 0x" not in str(exc)
    assert exc.internal and url in exc.internal  # where it failed: for the audit log and admins
    if mode == "error":
        assert SECRET in exc.internal  # the server's own words, kept for the audit log


def test_a_weights_refusal_keeps_the_path_and_the_text_internal(upstream):
    with pytest.raises(UpstreamError) as caught:
        _speak(f"{upstream.url}/error", _call(gpt_weights="/srv/secret/weights.ckpt"))
    exc = caught.value
    assert status_for(exc) == 502 and "GPT weights" in exc.message
    assert "/srv/secret" not in str(exc) and SECRET not in str(exc)
    assert "/srv/secret/weights.ckpt" in exc.internal and SECRET in exc.internal


def test_no_server_or_no_answer_is_503_not_502(upstream):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(EngineError) as caught:
        _speak(f"http://127.0.0.1:{closed}")
    assert not isinstance(caught.value, UpstreamError) and status_for(caught.value) == 503
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # the router turns this into its timeout fallback: 503
        _speak(f"{upstream.url}/hang", timeout=1.5)
    assert time.monotonic() - started < 4

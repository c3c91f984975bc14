"""The web page at / in headless Chromium (Debian's chromium driven by Playwright; no browser download).

Also: streamed MP3 plays in the page as it arrives (Media Source Extensions) and a streamed Ogg Opus
response plays to the end; durations are checked with PyAV (no system ffmpeg).
"""

from __future__ import annotations

import io
import shutil
import uuid

import numpy as np
import pytest

from tests.server.conftest import KEYS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


def open_page(server, browser, user: str, text: str):
    """The page with ``user``'s key, the Joe voice chosen and ``text`` typed; (page, page errors)."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server["url"] + "/")
    page.fill("#apikey", KEYS[user])
    page.dispatch_event("#apikey", "change")
    page.wait_for_function("document.querySelectorAll('#voice option').length > 0", polling=100)
    page.select_option("#voice", "en_US-joe-medium")
    page.fill("#text", text)
    return page, errors


@pytest.mark.slow
def test_page_plays_a_synthesis_and_shows_a_sample_score(server, browser, speech_wav):
    page, errors = open_page(server, browser, "carol", "Hello from the browser.")
    page.click("#speak")
    # the audio element got the synthesis and actually played it
    page.wait_for_function("document.getElementById('speak-status').textContent.startsWith('play')", polling=100, timeout=60000)
    assert "engine piper" in page.text_content("#speak-status")
    duration = page.evaluate("document.getElementById('player').duration")
    assert 0.8 < duration < 5
    page.wait_for_function("document.getElementById('player').currentTime > 0", polling=100, timeout=30000)

    # create a voice, upload a sample, see its score, choose the reference
    page.fill("#new-voice", "carol-voice")
    page.click("#create-voice")
    page.wait_for_function("document.getElementById('voice-status').textContent.startsWith('created')", polling=100)
    page.set_input_files("#sample-file", str(speech_wav))
    page.click("#upload")
    page.wait_for_selector("#samples tr td.score", timeout=30000)
    score = float(page.text_content("#samples tr td.score"))
    assert 0.5 < score <= 1.0
    assert "scored" in page.text_content("#voice-status")
    page.click("#auto-ref")
    page.wait_for_function("document.getElementById('voice-status').textContent.startsWith('reference:')", polling=100)
    assert page.is_checked("#samples tr input[type=checkbox]")
    assert errors == []
    page.close()


def test_page_shows_auth_errors(server, browser):
    page = browser.new_page()
    page.goto(server["url"] + "/")
    page.fill("#apikey", "wrong-key-000")
    page.dispatch_event("#apikey", "change")
    page.click("#speak")
    page.wait_for_function("document.getElementById('speak-status').className.includes('error')", polling=100)
    assert "missing or invalid API key" in page.text_content("#speak-status")
    page.close()


def seconds_av(data: bytes) -> float:
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(data)) as container:
        frames = [f for f in container.decode(container.streams.audio[0])]
    return sum(f.samples for f in frames) / frames[0].sample_rate


@pytest.mark.slow
def test_page_plays_streamed_mp3_to_the_end(server, browser, alice):
    text = f"Streaming into the browser. It plays while the rest arrives. Take {uuid.uuid4().int % 997}."
    page, errors = open_page(server, browser, "alice", text)
    assert page.evaluate("MediaSource.isTypeSupported('audio/mpeg')")  # the page takes the streaming path
    page.click("#speak")
    page.wait_for_function("document.getElementById('speak-status').textContent.startsWith('played')",
                           polling=100, timeout=90000)  # 'ended' fired
    duration = page.evaluate("document.getElementById('player').duration")
    assert page.evaluate("document.getElementById('player').src").startswith("blob:")
    # the same request again is a cache hit: the very bytes the page streamed
    res = alice.post("/api/tts", json={"text": text, "voice": "en_US-joe-medium", "format": "mp3", "stream": True})
    assert res.headers["x-cache"] == "hit"
    assert abs(duration - seconds_av(res.content)) < 0.1, duration
    assert errors == []


@pytest.mark.slow
def test_chromium_plays_a_streamed_ogg_opus_response_to_the_end(server, browser, alice):
    text = f"Opus in an Ogg stream. Played to its very end. Take {uuid.uuid4().int % 997}."
    page = browser.new_page()
    page.goto(server["url"] + "/")
    result = page.evaluate("""async ([key, text]) => {
        const res = await fetch("/api/tts", {method: "POST",
            headers: {"Content-Type": "application/json", "Authorization": "Bearer " + key},
            body: JSON.stringify({text, voice: "en_US-joe-medium", format: "opus", stream: true})});
        const type = res.headers.get("content-type");
        const player = new Audio(URL.createObjectURL(await res.blob()));
        const ended = new Promise((resolve) => player.addEventListener("ended", resolve, {once: true}));
        await player.play();
        await ended;
        return {duration: player.duration, type, time: player.currentTime};
    }""", [KEYS["alice"], text])
    assert result["type"].startswith("audio/ogg")
    res = alice.post("/api/tts", json={"text": text, "voice": "en_US-joe-medium", "format": "opus", "stream": True})
    assert res.headers["x-cache"] == "hit"
    expected = seconds_av(res.content)
    assert abs(result["duration"] - expected) < 0.05, (result, expected)
    assert result["time"] == pytest.approx(result["duration"], abs=0.05)
    assert np.isfinite(result["duration"])


@pytest.mark.slow
@pytest.mark.parametrize("path, fmt", [("/api/tts", "wav"), ("/api/tts", "flac"), ("/v1/audio/speech", "wav"),
                                       ("/v1/audio/speech", "flac")])
def test_chromium_plays_streamed_wav_and_flac_answers_to_the_end(server, browser, alice, path, fmt):
    """A streamed WAV (sizes 0xFFFFFFFF, as ffmpeg writes them) and a FLAC asked for as a stream (sent whole)
    play in Chromium to their last sample."""
    text = f"Played in the browser as {fmt}. To its very end. Take {uuid.uuid4().int % 997}."
    body = ({"text": text, "voice": "en_US-joe-medium", "format": fmt, "stream": True} if path == "/api/tts"
            else {"model": "tts-1", "input": text, "voice": "alloy", "response_format": fmt})
    page = browser.new_page()
    page.goto(server["url"] + "/")
    result = page.evaluate("""async ([key, path, body]) => {
        const res = await fetch(path, {method: "POST",
            headers: {"Content-Type": "application/json", "Authorization": "Bearer " + key},
            body: JSON.stringify(body)});
        const type = res.headers.get("content-type");
        const player = new Audio(URL.createObjectURL(await res.blob()));
        const ended = new Promise((resolve) => player.addEventListener("ended", resolve, {once: true}));
        await player.play();
        await ended;
        return {duration: player.duration, type, time: player.currentTime};
    }""", [KEYS["alice"], path, body])
    assert result["type"] == f"audio/{fmt}"
    res = alice.post(path, json=body)
    assert res.headers["x-cache"] == "hit"  # the very bytes the browser played
    expected = seconds_av(res.content)
    assert np.isfinite(result["duration"]) and abs(result["duration"] - expected) < 0.05, (result, expected)
    assert result["time"] == pytest.approx(result["duration"], abs=0.05)
    page.close()

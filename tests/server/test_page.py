"""The web page at / in headless Chromium (Debian's chromium driven by Playwright; no browser download)."""

from __future__ import annotations

import shutil

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


@pytest.mark.slow
def test_page_plays_a_synthesis_and_shows_a_sample_score(server, browser, speech_wav):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server["url"] + "/")
    page.fill("#apikey", KEYS["carol"])
    page.dispatch_event("#apikey", "change")
    page.wait_for_function("document.querySelectorAll('#voice option').length > 0", polling=100)
    page.select_option("#voice", "en_US-joe-medium")
    page.fill("#text", "Hello from the browser.")
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

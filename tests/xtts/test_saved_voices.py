"""One kind of saved voice: a voice profile, usable by every front end whichever one made it.

Tiny random-weight XTTS at a fixed seed (config ``xtts.seed``), so every front end must give the very
same samples: a voice saved with ``xtts-zero-shot --save-voice`` is spoken by ``--voice``, a batch
``voice`` and both HTTP endpoints; a voice made with ``voices add`` likewise. Voices saved by older
versions (``<data_dir>/xtts-voices/NAME/``) become profiles on first use.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.core.test_same_audio import Home, assert_same, post_ok, wav_samples
from tests.helpers import run_cli
from tests.server.conftest import free_port, start_server, stop_server

pytestmark = pytest.mark.slow

TEXT = "Hi there."


def xtts_home(root: Path, checkpoint: Path) -> Home:
    return Home(root, {"xtts": {"model_dir": str(checkpoint), "seed": 1234, "language": "en"}})


def samples(path: Path) -> tuple[int, bytes]:
    return wav_samples(path.read_bytes())


@pytest.fixture(scope="module")
def saved(tmp_path_factory, xtts_checkpoint, speech_wav):
    """'me' saved by the CLI while speaking, 'narrator' made by 'voices add'; one batch run over both."""
    h = xtts_home(tmp_path_factory.mktemp("saved-voices"), xtts_checkpoint)
    h.cli("xtts-zero-shot", speech_wav, TEXT, "--save-voice", "me", "-o", h.root / "reference.wav")
    h.cli("voices", "add", "narrator", "--engine", "xtts", "--sample", speech_wav)
    jobs = h.root / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"voice": name, "text": TEXT, "output": str(h.root / f"batch-{name}.wav")})
                            + "\n" for name in ("me", "narrator")))  # no engine, no reference: the voice says xtts
    h.cli("batch", jobs, "--no-resume")
    return h


def test_saved_voices_are_listed_once_as_profiles(saved):
    out = json.loads(saved.cli("voices", "list", "--json").stdout)
    for name in ("me", "narrator"):
        rows = [v for v in out if v["name"] == name]
        assert len(rows) == 1 and rows[0]["engine"] == "xtts" and rows[0]["source"] == "profile", out
    assert not (saved.root / "data" / "xtts-voices").exists()


def test_a_voice_saved_by_any_front_end_is_spoken_alike_by_every_other(saved):
    """CLI save -> CLI --voice, batch voice, /api/tts, /v1/audio/speech, Wyoming; 'voices add' -> the same.
    Both voices come from the same recording, so all of them equal the CLI run on the recording itself."""
    pytest.importorskip("wyoming")
    h = saved
    expected = samples(h.root / "reference.wav")
    results = {}
    for name in ("me", "narrator"):
        h.cli("xtts-zero-shot", "--voice", name, TEXT, "-o", h.root / f"cli-{name}.wav")
        results[f"cli --voice {name}"] = (h.root / f"cli-{name}.wav").read_bytes()
        results[f"batch voice {name}"] = (h.root / f"batch-{name}.wav").read_bytes()
    port = free_port()
    proc, url = start_server(h.root / "server", h.config.read_text() + SERVER_CONFIG,
                             ("--wyoming", f"tcp://127.0.0.1:{port}"))
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            for name in ("me", "narrator"):
                results[f"api/tts {name}"] = post_ok(client, "/api/tts", {
                    "text": TEXT, "voice": name, "fallback": False, "format": "wav"}, "xtts")
                results[f"v1/audio/speech {name}"] = post_ok(client, "/v1/audio/speech", {
                    "model": "tts-1-hd", "input": TEXT, "voice": name, "response_format": "wav"}, "xtts")
        wyoming = {name: wyoming_pcm(port, name) for name in ("me", "narrator")}
    finally:
        stop_server(proc)
    assert_same(expected, results)
    for name, (rate, pcm) in wyoming.items():
        assert (rate, pcm) == expected, f"Wyoming {name} gave different audio"


SERVER_CONFIG = "server:\n  cache: false\n  request_timeout_s: 900\nrouter:\n  timeout_s: 600\n"


def wyoming_pcm(port: int, voice: str) -> tuple[int, bytes]:
    """(rate, 16-bit samples) that Wyoming's synthesize answers for ``voice``."""
    import asyncio

    from wyoming.audio import AudioChunk, AudioStart
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize, SynthesizeVoice

    async def go():
        deadline = time.monotonic() + 60
        while True:  # the Wyoming listener opens next to HTTP
            try:
                client = AsyncTcpClient("127.0.0.1", port)
                await client.connect()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        try:
            await client.write_event(Synthesize(text=TEXT, voice=SynthesizeVoice(name=voice)).event())
            rate, pcm = 0, b""
            while True:
                event = await client.read_event()
                assert event is not None and event.type != "error", event
                if AudioStart.is_type(event.type):
                    rate = AudioStart.from_event(event).rate
                elif AudioChunk.is_type(event.type):
                    pcm += AudioChunk.from_event(event).audio
                elif event.type == "audio-stop":
                    return rate, pcm
        finally:
            await client.disconnect()

    return asyncio.run(asyncio.wait_for(go(), 600))


def test_save_voice_alone_needs_no_text_and_refuses_a_piper_profile(saved, speech_wav):
    h = saved
    h.cli("voices", "add", "fast", "--engine", "piper")
    proc = run_cli("xtts-zero-shot", speech_wav, "--save-voice", "fast", "--config", h.config, env=h.env)
    assert proc.returncode == 2 and b"voice 'fast' exists and is spoken by piper" in proc.stderr
    proc = run_cli("xtts-zero-shot", "--voice", "nobody", TEXT, "--config", h.config, env=h.env)
    assert proc.returncode == 2 and b"no saved voice named 'nobody'" in proc.stderr
    assert b"me" in proc.stderr  # the hint names the saved voices


# --- voices saved by older versions -----------------------------------------------------------------

def write_legacy_voice(data: Path, name: str, latents, references: list[str]) -> Path:
    """The layout ``xtts-zero-shot --save-voice`` wrote before voices were profiles."""
    folder = data / "xtts-voices" / name
    folder.mkdir(parents=True)
    latents.save(folder / "latents.safetensors", {"voice": name})
    meta = {"name": name, "engine": "xtts", "model_id": latents.model_id, "sample_rate": 24000,
            "created": "2026-01-02T03:04:05Z", "references": references}
    (folder / "voice.json").write_text(json.dumps(meta, indent=2))
    return folder


def test_old_saved_voices_migrate_on_first_use(tmp_path, xtts_checkpoint, xtts_latents, speech_wav):
    from demod_voice.voices import VoiceStore

    h = xtts_home(tmp_path / "old", xtts_checkpoint)
    data = h.root / "data"
    VoiceStore(data).create("taken", engine="piper")  # a profile that was there before
    before = {name: (write_legacy_voice(data, name, xtts_latents, refs) / "latents.safetensors").read_bytes()
              for name, refs in (("old", [str(speech_wav)]), ("gone", [str(tmp_path / "deleted.wav")]))}
    kept = write_legacy_voice(data, "taken", xtts_latents, [])

    listed = h.cli("voices", "list", "--json")
    out = json.loads(listed.stdout)
    for name, engine in (("old", "xtts"), ("gone", "xtts"), ("taken", "piper")):
        rows = [v for v in out if v["name"] == name]
        assert len(rows) == 1 and rows[0]["engine"] == engine and rows[0]["source"] == "profile", out
    assert b"saved XTTS voice 'taken'" in listed.stderr and (kept / "latents.safetensors").is_file()
    assert not (data / "xtts-voices" / "old").exists() and not (data / "xtts-voices" / "gone").exists()

    voices = data / "profiles" / "local" / "voices"
    for name in ("old", "gone"):
        assert (voices / name / "latents" / "xtts.safetensors").read_bytes() == before[name]
    old, gone = VoiceStore(data).get("old"), VoiceStore(data).get("gone")
    assert len(old.reference) == 1 and old.reference_paths()[0].is_file()  # its recording still existed
    assert gone.reference == []  # only the saved conditioning is left

    # Speaking them: the saved conditioning was made from the recording with this model, so each
    # equals the CLI run on the recording itself; the HTTP and batch paths are the same as above.
    h.cli("xtts-zero-shot", speech_wav, TEXT, "-o", h.root / "reference.wav")
    results = {}
    for name in ("old", "gone"):
        h.cli("xtts-zero-shot", "--voice", name, TEXT, "-o", h.root / f"{name}.wav")
        results[name] = (h.root / f"{name}.wav").read_bytes()
    assert_same(samples(h.root / "reference.wav"), results)


"""Home Assistant's own client loops, replayed with the `wyoming` library against the real server (issue 23).

Home Assistant's wyoming integration (homeassistant/components/wyoming/tts.py and stt.py) writes its events, then
reads until ``audio-stop`` (TTS), ``transcript`` (STT) or a closed connection; an ``error`` event alone does not
end the loop. So every error of a one-shot exchange must be followed by a close, or Home Assistant waits forever.
In a streaming synthesis the loop ends at ``synthesize-stopped``, which follows the error.

Also here: ``describe`` advertises only what can really answer, and ``sentence_silence`` goes between sentences
only (wyoming-piper's test_sentence_silence: the byte count for one and for two sentences).
"""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from tests.wyoming.conftest import free_port, launch, run, stop, tcp_open, wait_until

LOOP_LIMIT_S = 2.0
"""The issue's bound for Home Assistant's read loop after an error (without the fix it never ends)."""
JOE = "en_US-joe-medium"
SILENCE_S = 1.0


async def ha_tts(port: int, synthesize: Synthesize, limit: float = LOOP_LIMIT_S) -> tuple[list, str]:
    """Home Assistant's non-streaming TTS: synthesize, then read until audio-stop or a closed connection."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(synthesize.event())

        async def loop():
            events = []
            while True:
                event = await client.read_event()
                if event is None:
                    return events, "closed"
                events.append(event)
                if AudioStop.is_type(event.type):
                    return events, "audio-stop"

        return await asyncio.wait_for(loop(), limit)


async def ha_stt(port: int, transcribe: Transcribe, start: AudioStart, audio: bytes) -> tuple[list, str]:
    """Home Assistant's STT: transcribe, audio-start, chunks, audio-stop; read until transcript or a close."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(transcribe.event())
        await client.write_event(start.event())
        step = 2048
        for offset in range(0, len(audio), step):
            await client.write_event(AudioChunk(rate=start.rate, width=start.width, channels=start.channels,
                                                audio=audio[offset:offset + step]).event())
        await client.write_event(AudioStop().event())

        async def loop():
            events = []
            while True:
                event = await client.read_event()
                if event is None:
                    return events, "closed"
                events.append(event)
                if Transcript.is_type(event.type):
                    return events, "transcript"

        return await asyncio.wait_for(loop(), LOOP_LIMIT_S)


def ended_by_error_and_close(result) -> Error:
    events, ended = result
    assert ended == "closed", [e.type for e in events]
    assert [e.type for e in events] == ["error"], [e.type for e in events]
    return Error.from_event(events[0])


@pytest.fixture(scope="module")
def renamed_voice(wyoming_server) -> str:
    """A saved voice Home Assistant knew by its old name: it was renamed (made anew, the old one removed)."""
    from demod_voice.voices import VoiceStore

    store = VoiceStore(wyoming_server["home"] / "data", "local")
    store.create("kitchen-old", engine="piper", language="en")
    store.create("kitchen", engine="piper", language="en")
    store.remove("kitchen-old")
    return "kitchen-old"


@pytest.mark.parametrize("trigger", ["unknown voice", "renamed voice", "empty text", "bad speaker"])
def test_home_assistant_tts_loop_ends_on_every_error(wyoming_server, renamed_voice, trigger):
    request = {
        "unknown voice": Synthesize(text="Hello.", voice=SynthesizeVoice(name="no-such-voice")),
        "renamed voice": Synthesize(text="Hello.", voice=SynthesizeVoice(name=renamed_voice)),
        "empty text": Synthesize(text="", voice=SynthesizeVoice(name=JOE)),
        "bad speaker": Synthesize(text="Hello.", voice=SynthesizeVoice(name=JOE, speaker="nobody")),
    }[trigger]
    err = ended_by_error_and_close(run(ha_tts(wyoming_server["port"], request), 60))
    expected = {"unknown voice": "no-such-voice", "renamed voice": renamed_voice, "empty text": "empty",
                "bad speaker": "speaker"}[trigger]
    assert expected in err.text, err.text


def silence(seconds: float, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    return bytes(int(seconds * rate) * channels * width)


@pytest.mark.parametrize("trigger", ["language the model lacks", "missing model", "unsupported audio"])
def test_home_assistant_stt_loop_ends_on_every_error(wyoming_server, trigger):
    mono = AudioStart(rate=16000, width=2, channels=1)
    transcribe, start, audio = {
        "language the model lacks": (Transcribe(language="de"), mono, silence(1)),
        "missing model": (Transcribe(name="whisper-small.en", language="en"), mono, silence(1)),
        "unsupported audio": (Transcribe(language="en"), AudioStart(rate=16000, width=4, channels=1),
                              silence(1, width=4)),
    }[trigger]
    err = ended_by_error_and_close(run(ha_stt(wyoming_server["port"], transcribe, start, audio), 60))
    expected = {"language the model lacks": "language 'de'", "missing model": "whisper-small.en",
                "unsupported audio": "not supported"}[trigger]
    assert expected in err.text, err.text


def test_home_assistant_loops_still_succeed(wyoming_server):
    events, ended = run(ha_tts(wyoming_server["port"], Synthesize(text="Fine.", voice=SynthesizeVoice(name=JOE)),
                               limit=60), 60)
    assert ended == "audio-stop" and events[0].type == "audio-start"


def test_streaming_error_is_followed_by_synthesize_stopped(wyoming_server):
    """Home Assistant's streaming TTS reads until synthesize-stopped: the error comes first, then that."""
    async def go():
        async with AsyncTcpClient("127.0.0.1", wyoming_server["port"]) as client:
            voice = SynthesizeVoice(name="no-such-voice")
            await client.write_event(SynthesizeStart(voice=voice).event())
            await client.write_event(Synthesize(text="Hello there. How are you?", voice=voice).event())
            for part in ("Hello there. ", "How are ", "you?"):
                await client.write_event(SynthesizeChunk(text=part).event())
            await client.write_event(SynthesizeStop().event())

            async def loop():
                events = []
                while (event := await client.read_event()) is not None:
                    events.append(event)
                    if SynthesizeStopped.is_type(event.type):
                        break
                return events

            return await asyncio.wait_for(loop(), 30)

    types = [e.type for e in run(go())]
    assert types == ["error", "synthesize-stopped"], types


def describe(port: int) -> Info:
    async def go():
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            return Info.from_event(await client.read_event())

    return run(go(), 60)


def test_describe_advertises_what_can_answer(wyoming_server, whisper_path):
    info = describe(wyoming_server["port"])
    voices = {v.name for v in info.tts[0].voices}
    assert {JOE, "narrator", "inbox"} <= voices  # XTTS model and reference present; a Piper-engine profile
    assert all(v.installed for v in info.tts[0].voices)
    assert [m.name for m in info.asr[0].models] == [str(whisper_path)]
    assert all(m.installed and m.languages for m in info.asr[0].models)


# --- a server with no Whisper model, no XTTS model, and sentence_silence -----------------------

@pytest.fixture(scope="module")
def bare_server(tmp_path_factory, joe_voice, speech_wav):
    """Piper only: stt.model names a registry Whisper model that is not installed, xtts has no model, and the
    saved XTTS voice 'narrator' has its reference; piper.sentence_silence is SILENCE_S."""
    pytest.importorskip("wyoming")
    from demod_voice.voices import VoiceStore

    home = tmp_path_factory.mktemp("wyoming-bare")
    store = VoiceStore(home / "data", "local")
    store.create("narrator", engine="xtts", language="en")
    store.add_sample("narrator", speech_wav)
    store.auto_reference("narrator")
    store.create("inbox", engine="piper", language="en")
    config = home / "server.yaml"
    config.write_text(f"""
paths:
  data_dir: {home / 'data'}
  cache_dir: {home / 'cache'}
stt:
  model: whisper-base.en
piper:
  noise_scale: 0.0
  noise_w: 0.0
  sentence_silence: {SILENCE_S}
""")
    http_port, port = free_port(), free_port()
    proc = launch(home, config, ["--port", str(http_port), "--wyoming", f"tcp://127.0.0.1:{port}"])

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200 and tcp_open(port)
        except httpx.HTTPError:
            return False

    wait_until(proc, home, ready, "Piper-only HTTP + Wyoming server")
    yield {"port": port, "http": f"http://127.0.0.1:{http_port}", "home": home}
    stop(proc)


def test_describe_without_whisper_or_xtts_model(bare_server):
    info = describe(bare_server["port"])
    assert info.asr == []  # no ASR program: Home Assistant would make an entity that cannot work
    voices = {v.name for v in info.tts[0].voices}
    assert JOE in voices and "inbox" in voices
    assert "narrator" not in voices  # its engine's model is missing


def test_missing_stt_model_ends_home_assistants_loop(bare_server):
    err = ended_by_error_and_close(run(ha_stt(bare_server["port"], Transcribe(language="en"),
                                              AudioStart(rate=16000, width=2, channels=1), silence(1)), 60))
    assert "whisper-base.en" in err.text and "not installed" in err.text


def wyoming_pcm(port: int, text: str) -> bytes:
    events, ended = run(ha_tts(port, Synthesize(text=text, voice=SynthesizeVoice(name=JOE)), limit=300), 300)
    assert ended == "audio-stop"
    assert AudioStart.from_event(events[0]).rate == 22050
    return b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))


def http_frames(url: str, text: str, params: dict) -> int:
    import soundfile as sf

    answer = httpx.post(f"{url}/api/tts", json={"text": text, "voice": JOE, "format": "wav", "params": params},
                        timeout=300)
    assert answer.status_code == 200, answer.text
    return sf.info(io.BytesIO(answer.content)).frames


@pytest.mark.parametrize("text,gaps", [("This is a test.", 0), ("This is a test. This is another test.", 1)])
def test_sentence_silence_goes_between_sentences_only(bare_server, text, gaps):
    """wyoming-piper's test_sentence_silence: the silence is added once between two sentences, never at the end.

    The same process answers the same text over HTTP with sentence_silence 0 (same engine, same request path),
    so the byte count differs by exactly the gaps."""
    pcm = wyoming_pcm(bare_server["port"], text)
    without = http_frames(bare_server["http"], text, {"sentence_silence": 0.0})
    assert len(pcm) == 2 * (without + gaps * int(SILENCE_S * 22050))
    assert http_frames(bare_server["http"], text, {}) * 2 == len(pcm)  # the config's silence over HTTP too
    samples = np.frombuffer(pcm, "<i2")
    assert not np.all(samples[-int(0.5 * 22050):] == 0)  # it ends in speech, not in the silence


async def streamed_pcm(port: int, pieces: list[str]) -> bytes:
    """Home Assistant's streaming TTS: synthesize-start, the text in chunks, synthesize-stop; the audio until
    synthesize-stopped."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        voice = SynthesizeVoice(name=JOE)
        await client.write_event(SynthesizeStart(voice=voice).event())
        for piece in pieces:
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(SynthesizeStop().event())
        audio = b""
        while True:
            event = await asyncio.wait_for(client.read_event(), 300)
            assert event is not None and not Error.is_type(event.type), event
            if AudioChunk.is_type(event.type):
                audio += AudioChunk.from_event(event).audio
            if SynthesizeStopped.is_type(event.type):
                return audio


def test_streamed_sentence_silence_equals_one_shot(bare_server):
    """#34: each flushed sentence of a stream continues the same answer, so sentence_silence goes between
    them too: the streamed answer has exactly the one-shot answer's bytes (it had 44,100 fewer per gap)."""
    text = "This is a test. This is another test."
    one_shot = wyoming_pcm(bare_server["port"], text)
    streamed = run(streamed_pcm(bare_server["port"], ["This is a test. ", "This is another ", "test."]))
    assert len(streamed) == len(one_shot)
    assert streamed == one_shot  # noise 0: the same samples

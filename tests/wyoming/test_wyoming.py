"""The real Wyoming server over TCP with the real `wyoming` client: describe, synthesize, streaming, transcribe."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from tests.helpers import word_error_rate
from tests.wyoming.conftest import collect, run

PARAGRAPH = ("The little boat drifted slowly across the lake. Children were playing on the shore, and a dog "
             "barked at the ducks. Later that evening, the wind grew stronger and the clouds turned grey.")


def audio_of(events) -> tuple[int, np.ndarray]:
    """(rate, samples) from audio-start + audio-chunk events, checking the format on the way."""
    starts = [AudioStart.from_event(e) for e in events if e is not None and AudioStart.is_type(e.type)]
    assert len(starts) == 1, [e.type for e in events if e is not None]
    start = starts[0]
    assert (start.width, start.channels) == (2, 1)
    chunks = [AudioChunk.from_event(e) for e in events if e is not None and AudioChunk.is_type(e.type)]
    assert chunks and all((c.rate, c.width, c.channels) == (start.rate, 2, 1) for c in chunks)
    pcm = b"".join(c.audio for c in chunks)
    return start.rate, np.frombuffer(pcm, "<i2").astype(np.float32) / 32768


async def synthesize(port: int, text: str, voice: str | None = None) -> list:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None).event())
        return await collect(client, {"audio-stop", "error"})


def test_describe_lists_piper_cloned_and_whisper(wyoming_server, whisper_path):
    async def go():
        async with AsyncTcpClient("127.0.0.1", wyoming_server["port"]) as client:
            await client.write_event(Describe().event())
            return Info.from_event(await client.read_event())

    info = run(go())
    assert len(info.tts) == 1 and info.tts[0].supports_synthesize_streaming is True
    voices = {v.name: v for v in info.tts[0].voices}
    assert voices["en_US-joe-medium"].languages == ["en_US"] and voices["en_US-joe-medium"].installed
    assert voices["narrator"].languages == ["en"] and "xtts" in voices["narrator"].description
    models = {m.name: m for m in info.asr[0].models}
    assert models[str(whisper_path)].languages == ["en"] and models[str(whisper_path)].installed


def test_synthesize_piper_voice(wyoming_server, transcribe):
    events = run(synthesize(wyoming_server["port"], PARAGRAPH, "en_US-joe-medium"))
    assert events[-1].type == "audio-stop"
    rate, samples = audio_of(events)
    assert rate == 22050 and len(samples) / rate > 5
    from demod_voice.audio import Audio, resample

    heard = transcribe(resample(Audio(samples, rate), 16000).samples)
    assert word_error_rate(PARAGRAPH, heard) <= 0.1, heard


def test_synthesize_saved_xtts_profile(wyoming_server):
    events = run(synthesize(wyoming_server["port"], "Hello from a cloned voice.", "narrator"))
    assert events[-1].type == "audio-stop", events[-1]
    rate, samples = audio_of(events)
    assert rate == 24000  # XTTS speaks at 24 kHz; a Piper fallback would say 22050
    assert len(samples) > 0 and np.isfinite(samples).all()


def test_streaming_text_speaks_before_stop(wyoming_server, transcribe):
    parts = ["The weather today is ", "sunny and warm. Tomorrow it", " will rain in the north."]

    async def go():
        async with AsyncTcpClient("127.0.0.1", wyoming_server["port"]) as client:
            voice = SynthesizeVoice(name="en_US-joe-medium")
            await client.write_event(SynthesizeStart(voice=voice).event())
            await client.write_event(Synthesize(text="".join(parts), voice=voice).event())  # as Home Assistant does
            await client.write_event(SynthesizeChunk(text=parts[0]).event())
            await client.write_event(SynthesizeChunk(text=parts[1]).event())
            # The first sentence is complete: its audio arrives while the stream is still open.
            early = await collect(client, {"audio-chunk", "error"})
            assert early[-1].type == "audio-chunk", early[-1]
            await client.write_event(SynthesizeChunk(text=parts[2]).event())
            await client.write_event(SynthesizeStop().event())
            return early + await collect(client, {"synthesize-stopped", "error"})

    events = run(go())
    types = [e.type for e in events]
    assert types[-1] == "synthesize-stopped" and types[-2] == "audio-stop" and "error" not in types
    assert types.count("audio-start") == 1 and types.count("audio-stop") == 1
    rate, samples = audio_of(events)
    from demod_voice.audio import Audio, resample

    heard = transcribe(resample(Audio(samples, rate), 16000).samples)
    assert word_error_rate("".join(parts), heard) <= 0.15, heard


async def send_audio(client, samples: np.ndarray, rate: int, chunk: int = 2048) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
    for start in range(0, len(pcm), chunk * 2):
        await client.write_event(AudioChunk(rate=rate, width=2, channels=1, audio=pcm[start:start + chunk * 2]).event())
    await client.write_event(AudioStop().event())


def test_transcribe_our_own_piper_output(wyoming_server, joe_voice):
    from demod_voice.engines.piper import engine as piper

    speech = piper.load(joe_voice, "cpu").synthesize_all(PARAGRAPH, piper.PiperOptions(noise_scale=0.0, noise_w=0.0))

    async def go():
        async with AsyncTcpClient("127.0.0.1", wyoming_server["port"]) as client:
            await client.write_event(Transcribe(language="en").event())
            await send_audio(client, speech.samples, speech.sample_rate)
            return await collect(client, {"transcript", "error"})

    event = run(go())[-1]
    assert event.type == "transcript", event
    transcript = Transcript.from_event(event)
    assert transcript.language == "en"
    assert word_error_rate(PARAGRAPH, transcript.text) <= 0.1, transcript.text
    # opt-in collection: the audio became a sample of the Wyoming user's voice 'inbox', with its transcript
    collected = transcript.context["demod_voice"]["collected"]
    from demod_voice.voices import VoiceStore

    samples = VoiceStore(wyoming_server["home"] / "data", "local").samples("inbox")
    assert [s.id for s in samples] == [collected["sample_id"]] and samples[0].transcript == transcript.text
    assert collected["voice"] == "inbox" and collected["score"] == samples[0].score["overall"]


@pytest.mark.parametrize("chained", [False, True])
def test_pipelined_requests_on_one_connection(wyoming_server, chained):
    """Describe, then two syntheses on one connection: state resets between responses."""
    async def go():
        async with AsyncTcpClient("127.0.0.1", wyoming_server["port"]) as client:
            out = []
            for text in ("One.", "Two and three."):
                await client.write_event(Synthesize(text=text).event())
                if not chained:
                    out.append(await collect(client, {"audio-stop", "error"}))
            if chained:
                out = [await collect(client, {"audio-stop", "error"}) for _ in range(2)]
            return out

    for events in run(go()):
        assert events[-1].type == "audio-stop"
        assert audio_of(events)[0] == 22050


def test_audio_format_is_stable_across_requests(wyoming_server):
    a = run(synthesize(wyoming_server["port"], "Same words.", "en_US-joe-medium"))
    b = run(synthesize(wyoming_server["port"], "Same words.", "en_US-joe-medium"))  # the cache answers this one
    assert audio_of(a)[0] == audio_of(b)[0] == 22050
    assert len(audio_of(a)[1]) == len(audio_of(b)[1])


def test_server_keeps_serving_many_clients(wyoming_server):
    async def one(i):
        return await synthesize(wyoming_server["port"], f"Client number {i}.", "en_US-joe-medium")

    async def go():
        return await asyncio.gather(*(one(i) for i in range(4)))

    for events in run(go()):
        assert events[-1].type == "audio-stop"

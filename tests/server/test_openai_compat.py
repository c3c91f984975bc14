"""Clients nobody here wrote: the official `openai` SDK, libsndfile (soundfile) and ffmpeg (PyAV).

A real server of its own (Piper noise off, so the same text gives the same samples every time), with
one ``server.model_map`` entry added to the defaults. Covers OpenAI's current model and voice names,
``models.retrieve``, ``instructions``, ``pcm`` at 24 kHz, OpenAI's error shape from every kind of error,
and every audio answer -- ``/v1/audio/speech``, ``/api/tts`` (whole and streamed) and the CLI -- read
back by both readers with complete headers where the answer is whole.
"""

from __future__ import annotations

import hashlib
import io
import struct
import uuid

import httpx
import numpy as np
import pytest
import soundfile as sf

from demod_voice import streaming
from tests.server.conftest import KEYS, auth_config, start_server, stop_server

openai = pytest.importorskip("openai")
av = pytest.importorskip("av")

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
          "marin", "cedar")
MAX_TEXT = 500
MAX_UPLOAD_MB = 0.1
TEXT = "Every answer opens in every reader. The second sentence ends it."
#: libmp3lame's encoder delay plus the decoder's: a streamed MP3 cannot declare it (tests/server/test_streaming.py).
MP3_DELAY = 1105
#: What OpenAI's error object holds, and the types it uses.
ERROR_KEYS = {"message", "type", "param", "code"}
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                422: "invalid_request_error", 429: "rate_limit_error"}


@pytest.fixture(scope="module")
def compat(tmp_path_factory, joe_voice):
    home = tmp_path_factory.mktemp("compat-home")
    config = f"""
{auth_config()}  max_text_chars: {MAX_TEXT}
  max_upload_mb: {MAX_UPLOAD_MB}
  model_map:
    house-tts: medium
piper:
  noise_scale: 0.0
  noise_w: 0.0
"""
    proc, url = start_server(home, config, ("--preload",))
    yield {"url": url, "home": home}
    stop_server(proc)


@pytest.fixture(scope="module")
def sdk(compat):
    return openai.OpenAI(base_url=compat["url"] + "/v1", api_key=KEYS["alice"], max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def http(compat):
    with httpx.Client(base_url=compat["url"], headers={"Authorization": f"Bearer {KEYS['alice']}"},
                      timeout=300) as client:
        yield client


# --- readers ---------------------------------------------------------------------------------------

def read_soundfile(data: bytes, fmt: str, rate: int | None = None) -> tuple[int, int]:
    """(frames, rate) from libsndfile reading the whole answer in one call, as ``soundfile.read`` users do."""
    if fmt == "pcm":
        samples, rate = sf.read(io.BytesIO(data), samplerate=rate, channels=1, format="RAW", subtype="PCM_16",
                                endian="LITTLE")
    else:
        samples, rate = sf.read(io.BytesIO(data))
    return len(samples), rate


def read_pyav(data: bytes, fmt: str, rate: int | None = None) -> tuple[int, int]:
    """(frames, rate) from ffmpeg's demuxers and decoders (PyAV's bundled libraries)."""
    options = {"sample_rate": str(rate), "ch_layout": "mono"} if fmt == "pcm" else {}
    with av.open(io.BytesIO(data), format="s16le" if fmt == "pcm" else None, options=options) as container:
        stream = container.streams.audio[0]
        frames = sum(frame.samples for frame in container.decode(stream))
        return frames, stream.rate


def readers_for(fmt: str):
    """libsndfile reads all but AAC; ffmpeg reads everything."""
    return [read_pyav] + ([read_soundfile] if fmt != "aac" else [])


def wav_sizes(data: bytes) -> tuple[int, int, int]:
    """(RIFF size, data chunk size, offset of the samples) of a WAV file."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    riff = struct.unpack("<I", data[4:8])[0]
    pos = 12
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if tag == b"data":
            return riff, size, pos + 8
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def flac_streaminfo(data: bytes) -> tuple[int, int, str]:
    """(sample rate, total samples, MD5 hex) from a FLAC file's STREAMINFO block."""
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    packed = int.from_bytes(data[18:26], "big")
    return packed >> 44, packed & ((1 << 36) - 1), data[26:42].hex()


def check_complete_header(data: bytes, fmt: str) -> None:
    """A whole answer states its length: WAV's sizes, FLAC's total samples and MD5 of the samples."""
    if fmt == "wav":
        riff, size, start = wav_sizes(data)
        assert riff == len(data) - 8 and size == len(data) - start
        assert sf.info(io.BytesIO(data)).frames == size // 2
    elif fmt == "flac":
        rate, total, md5 = flac_streaminfo(data)
        pcm, read_rate = sf.read(io.BytesIO(data), dtype="int16")
        assert (rate, total) == (read_rate, len(pcm)) and total > 0
        assert md5 == hashlib.md5(pcm.astype("<i2").tobytes()).hexdigest()


def check_answer(data: bytes, fmt: str, seconds: float, streamed: bool, rate: int | None = None) -> None:
    """Every reader opens ``data`` and finds ``seconds`` of audio (codec padding aside)."""
    if not streamed:
        check_complete_header(data, fmt)
    elif fmt == "wav":  # unknown length, as ffmpeg writes it; libsndfile still reads every sample
        riff, size, start = wav_sizes(data)
        assert riff == size == 0xFFFFFFFF
    spec = streaming.CODECS.get(fmt)
    tolerance = 1e-3 + (2 * spec.frame_samples / spec.fallback_rate if spec else 0.0) + MP3_DELAY / 22050
    for reader in readers_for(fmt):
        frames, read_rate = reader(data, fmt, rate)
        assert abs(frames / read_rate - seconds) <= tolerance, (fmt, reader.__name__, frames / read_rate, seconds)
        if fmt == "wav" and streamed:
            assert frames == (len(data) - 44) // 2  # to the very end


@pytest.fixture(scope="module")
def reference(http) -> float:
    """Seconds of ``TEXT`` in the voice's own rate (a whole WAV: its header states the length)."""
    res = http.post("/api/tts", json={"text": TEXT, "voice": "en_US-joe-medium", "format": "wav", "cache": False})
    assert res.status_code == 200
    samples, rate = sf.read(io.BytesIO(res.content))
    assert rate == 22050
    return len(samples) / rate


# --- OpenAI names ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_sdk_gpt_4o_mini_tts_speaks_with_every_current_voice(sdk):
    for voice in VOICES:
        response = sdk.audio.speech.create(model="gpt-4o-mini-tts", voice=voice, input=f"I am {voice}.",
                                           response_format="wav")
        samples, rate = sf.read(io.BytesIO(response.content))
        assert rate == 22050 and len(samples) / rate > 0.4 and np.abs(samples).max() > 0.05, voice
    for model in ("gpt-4o-tts", "house-tts", "tts-1", "tts-1-hd"):  # house-tts: added in server.model_map
        response = sdk.audio.speech.create(model=model, voice="coral", input="A model name.", response_format="wav")
        assert sf.info(io.BytesIO(response.content)).duration > 0.4, model


@pytest.mark.slow
def test_instructions_are_accepted_and_reported_as_ignored(sdk):
    raw = sdk.audio.speech.with_raw_response.create(model="gpt-4o-mini-tts", voice="sage", input="Calmly now.",
                                                    instructions="Speak like a lighthouse keeper.",
                                                    response_format="mp3")
    assert raw.http_response.status_code == 200 and raw.headers["x-ignored"] == "instructions"
    plain = sdk.audio.speech.with_raw_response.create(model="gpt-4o-mini-tts", voice="sage", input="Calmly now.",
                                                      response_format="mp3")
    assert "x-ignored" not in plain.headers


def test_models_list_and_retrieve(sdk):
    listed = [m.id for m in sdk.models.list()]
    for name in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-tts", "house-tts"):
        assert name in listed
        model = sdk.models.retrieve(name)
        assert model.id == name and model.object == "model"
    assert "whisper-1" not in listed  # no speech-to-text model here (listed in tests/server/test_stt.py)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.models.retrieve("gpt-9-tts")
    assert caught.value.type == "not_found_error" and caught.value.code == "model_not_found"
    assert caught.value.param == "model" and "gpt-9-tts" in caught.value.message


@pytest.mark.slow
def test_pcm_is_24khz_16bit_mono_and_native_pcm_keeps_the_voice_rate(sdk, http):
    text = "Raw samples at twenty four kilohertz. Clients hard code that rate."
    wav = sdk.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav").content
    source, source_rate = sf.read(io.BytesIO(wav), dtype="float32")
    raw = sdk.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=text, response_format="pcm")
    assert raw.headers["x-sample-rate"] == "24000" and raw.headers["content-type"] == "audio/pcm"
    pcm = raw.content
    assert len(pcm) % 2 == 0
    # the byte count is the duration at 24 kHz (2 bytes a sample), to a sample or two of resampling
    assert abs(len(pcm) / 2 - len(source) * 24000 / source_rate) <= 2, (len(pcm), len(source))
    # and the samples are the same speech, resampled (not 22.05 kHz samples labelled 24 kHz)
    import soxr

    expected = soxr.resample(source, source_rate, 24000, quality="HQ")
    got = np.frombuffer(pcm, "<i2").astype(np.float32) / 32767
    n = min(len(expected), len(got))
    assert np.corrcoef(expected[:n], got[:n])[0, 1] > 0.99
    # the native route keeps the voice's own rate and says so
    for stream in (False, True):
        native = http.post("/api/tts", json={"text": text, "voice": "en_US-joe-medium", "format": "pcm",
                                             "stream": stream})
        assert native.headers["x-sample-rate"] == "22050"
        assert len(native.content) // 2 == len(source), stream


@pytest.mark.slow
def test_openai_sse_pcm_deltas_are_24khz(sdk):
    import base64

    with sdk.audio.speech.with_streaming_response.create(model="tts-1", voice="nova", input="Two parts. Here.",
                                                         response_format="pcm", stream_format="sse") as response:
        events = list(openai.Stream(cast_to=object, response=response.http_response, client=sdk))
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert abs(len(pcm) / 2 / 24000 - events[-1]["duration"]) < 0.002


# --- every answer in every reader --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_openai_speech_every_format_opens_in_every_reader(sdk, reference, fmt):
    raw = sdk.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=TEXT, response_format=fmt)
    # the OpenAI route streams every format but FLAC, whose STREAMINFO needs the whole audio
    check_answer(raw.content, fmt, reference, streamed=fmt != "flac", rate=24000 if fmt == "pcm" else None)


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "opus", "mp3", "aac", "pcm"])
def test_native_tts_every_format_opens_in_every_reader(http, reference, fmt, stream):
    res = http.post("/api/tts", json={"text": TEXT, "voice": "en_US-joe-medium", "format": fmt, "stream": stream})
    assert res.status_code == 200, res.text
    streamed = stream and fmt in ("wav", "pcm", "mp3", "opus", "aac")  # ogg and flac are always sent whole
    check_answer(res.content, fmt, reference, streamed, rate=22050 if fmt == "pcm" else None)


@pytest.mark.slow
def test_cli_every_format_opens_in_every_reader(cli, tmp_path, reference):
    quiet = ("--noise-scale", "0", "--noise-w", "0")
    for fmt in ("wav", "flac", "ogg", "opus", "mp3", "aac", "pcm"):
        out = tmp_path / f"speech.{fmt}"
        proc = cli("piper-infer", "en_US-joe-medium", TEXT, "-o", out, *quiet)
        assert proc.returncode == 0, proc.stderr.decode()
        check_answer(out.read_bytes(), fmt, reference, streamed=False, rate=22050 if fmt == "pcm" else None)
    for fmt in ("wav", "flac"):  # standard output is spooled, so its headers are complete too
        proc = cli("piper-infer", "en_US-joe-medium", TEXT, "-o", "-", "--format", fmt, *quiet)
        assert proc.returncode == 0, proc.stderr.decode()
        check_answer(proc.stdout, fmt, reference, streamed=False)


def test_streamed_wav_header_is_ffmpegs_for_unknown_lengths():
    """ffmpeg's WAV muxer on a pipe writes RIFF and data sizes of 0xFFFFFFFF; ours says the same."""
    sink = streaming._Sink()
    container = av.open(sink, mode="w", format="wav")
    stream = container.add_stream("pcm_s16le", rate=22050, layout="mono")
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 441), dtype="<i2"), format="s16", layout="mono")
    frame.sample_rate, frame.pts = 22050, 0
    for packet in [*stream.encode(frame), *stream.encode(None)]:
        container.mux(packet)
    container.close()
    theirs, ours = sink.take(), streaming.wav_stream_header(22050)
    assert wav_sizes(theirs)[:2] == wav_sizes(ours)[:2] == (0xFFFFFFFF, 0xFFFFFFFF)
    assert theirs[12:36] == ours[12:36]  # the same fmt chunk
    pcm = np.sin(np.arange(2205) / 5).astype(np.float32) * 0.3
    data = ours + (np.clip(pcm, -1, 1) * 32767).round().astype("<i2").tobytes()
    assert read_soundfile(data, "wav") == (2205, 22050) and read_pyav(data, "wav") == (2205, 22050)


# --- OpenAI's error shape from every kind of error -----------------------------------------------------

def check_error(res: httpx.Response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert res.status_code == status, (res.status_code, res.text)
    assert res.headers["content-type"].startswith("application/json")
    error = res.json()["error"]
    assert ERROR_KEYS <= set(error) and "detail" not in res.json(), error
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == OPENAI_TYPES[status], error
    assert error["code"] is None or isinstance(error["code"], str), error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def test_errors_401_from_every_route_and_unknown_ones(compat):
    url = compat["url"]
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        for method, path in (("POST", "/v1/audio/speech"), ("GET", "/v1/models"), ("GET", "/v1/models/tts-1"),
                             ("POST", "/v1/audio/transcriptions"), ("POST", "/api/tts"), ("GET", "/api/voices"),
                             ("GET", "/v1/no-such-route"), ("DELETE", "/nothing/here")):
            res = httpx.request(method, url + path, headers=headers, json={})
            check_error(res, 401, "invalid_api_key")
            assert res.headers["www-authenticate"] == "Bearer"


def test_errors_403_cross_origin(http):
    evil = {"Origin": "http://evil.example"}
    for path, body in (("/v1/audio/speech", {"input": "hi"}), ("/api/tts", {"text": "hi"}),
                       ("/api/voices", {"name": "x"}), ("/v1/no-such-route", {})):
        check_error(http.post(path, json=body, headers=evil), 403, "cross_origin_refused")


def test_errors_404_unknown_routes_models_and_voices(http):
    for method, path in (("GET", "/v1/no-such-route"), ("POST", "/api/nothing"), ("GET", "/v1/audio"),
                         ("PUT", "/v2/models")):
        error = check_error(http.request(method, path), 404, "unknown_url")
        assert path in error["message"]
    check_error(http.get("/v1/models/tts-9"), 404, "model_not_found", "model")
    check_error(http.post("/v1/audio/speech", json={"input": "hi", "voice": "nobody"}), 404, "voice_not_found", "voice")
    check_error(http.post("/api/tts", json={"text": "hi", "voice": "nobody"}), 404, "voice_not_found", "voice")
    check_error(http.get("/api/voices/nobody"), 404)


def test_errors_405_wrong_method(http):
    for method, path in (("GET", "/v1/audio/speech"), ("DELETE", "/v1/models"), ("PUT", "/api/tts"),
                         ("GET", "/v1/audio/transcriptions")):
        res = http.request(method, path)
        check_error(res, 405, "method_not_allowed")
        assert res.headers["allow"]


def test_errors_413_body_upload_and_text_limits(http):
    limit = int(MAX_UPLOAD_MB * 1024 * 1024)
    big = b"x" * (limit + 128 * 1024)  # past server.max_body_bytes: the middleware answers
    for path in ("/v1/audio/speech", "/api/tts"):
        check_error(http.post(path, content=big, headers={"Content-Type": "application/json"}), 413,
                    "request_too_large")
    check_error(http.post("/v1/audio/transcriptions", files={"file": ("a.wav", big, "audio/wav")}), 413,
                "request_too_large")
    # within the body limit, past the upload limit: the route answers
    over = b"\0" * (limit + 1024)
    check_error(http.post("/v1/audio/transcriptions", files={"file": ("a.wav", over, "audio/wav")},
                          data={"model": "whisper-1"}), 413, "request_too_large", "file")
    # the service's own text limit: 400 as OpenAI answers it (the SDK's BadRequestError)
    check_error(http.post("/v1/audio/speech", json={"input": "a" * (MAX_TEXT + 1)}), 400,
                "string_above_max_length", "input")


def test_errors_400_bad_json_values_multipart_model_and_host(http):
    json_headers = {"Content-Type": "application/json"}
    for path in ("/v1/audio/speech", "/api/tts", "/api/voices"):
        check_error(http.post(path, content=b"{not json", headers=json_headers), 400, "invalid_json")
    check_error(http.post("/v1/audio/speech", json={"input": "hi", "model": "tts-9"}), 400, "model_not_found", "model")
    check_error(http.post("/v1/audio/speech", json={"input": "hi"}, headers={"Host": "attacker.example"}), 400,
                "invalid_host")
    check_error(http.post("/api/tts", json={"text": "   "}), 400)
    multipart = {"Content-Type": "multipart/form-data"}  # no boundary: Starlette's parser refuses it
    for path in ("/v1/audio/transcriptions", "/api/voices/v/samples"):
        check_error(http.post(path, content=b"--x\r\n", headers=multipart), 400, "invalid_body")


def test_errors_from_request_validation_in_openais_shape(http):
    """FastAPI answers a request that fails its schema with 422 ``{"detail": [...]}``; here a bad or missing
    parameter is 400, as OpenAI answers it, a value of the wrong type 422, both in OpenAI's shape with the
    field named in ``param``."""
    cases = (("/v1/audio/speech", {"input": "hi", "speed": 9}, "speed", "invalid_value"),
             ("/v1/audio/speech", {"voice": "alloy"}, "input", "missing_required_parameter"),
             ("/v1/audio/speech", {"input": "hi", "response_format": "xyz"}, "response_format", "invalid_value"),
             ("/api/tts", {"text": "hi", "format": "wma"}, "format", "invalid_value"),
             ("/api/tts", {"voice": "alloy"}, "text", "missing_required_parameter"),
             ("/api/voices", {"name": "x", "engine": "nope"}, "engine", "invalid_value"))
    for path, body, param, code in cases:
        check_error(http.post(path, json=body), 400, code, param)
    res = http.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    check_error(res, 400, "missing_required_parameter", "file")
    for path, body, param in (("/v1/audio/speech", {"input": "hi", "speed": "fast"}, "speed"),
                              ("/v1/audio/speech", {"input": ["hi"]}, "input"),
                              ("/api/tts", {"text": {"a": 1}}, "text")):
        check_error(http.post(path, json=body), 422, "invalid_type", param)


def test_sdk_raises_its_typed_errors(sdk, compat):
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="hi", speed=9)
    assert bad.value.param == "speed" and bad.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        sdk.audio.speech.create(model="gpt-4o-mini-tts", voice="nobody-at-all", input="hi")
    stranger = openai.OpenAI(base_url=compat["url"] + "/v1", api_key="wrong-key-" + uuid.uuid4().hex, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        stranger.models.list()
    assert denied.value.code == "invalid_api_key" and denied.value.type == "authentication_error"


def test_model_map_defaults_and_the_old_key_name():
    from demod_voice import config
    from demod_voice.errors import ConfigError

    cfg = config.Config()
    assert cfg.get("server.model_map")["gpt-4o-mini-tts"] == cfg.get("server.model_map")["tts-1-hd"] == "high"
    with pytest.raises(ConfigError) as refused:
        cfg.apply({"server": {"models": {"tts-1": "high"}}}, "test")
    assert "server.model_map" in refused.value.hint

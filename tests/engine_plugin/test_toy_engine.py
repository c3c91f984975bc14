"""An engine is one folder: ``tests/engine_plugin/toy/`` registered by one config line reaches every front end
(the CLI's ``say``, a batch job, ``/v1/audio/speech``, Wyoming's describe and ``health``) with the same audio,
and no file under demod_voice/ names it (issue #33 item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.core.test_same_audio import wav_samples
from tests.helpers import run_cli
from tests.server.conftest import start_server, stop_server

REGISTRATION = "engines:\n  modules: {toy: tests.engine_plugin.toy.plugin}\n"  # the one line that adds it
TEXT = "Hello there. A toy speaks."


def test_nothing_in_the_package_names_the_toy():
    package = Path(__file__).resolve().parents[2] / "demod_voice"
    assert not [p for p in package.rglob("*.py") if "engine_plugin" in p.read_text(encoding="utf-8")]


@pytest.mark.slow
def test_a_one_folder_engine_reaches_every_front_end(tmp_path, isolated_home):
    from demod_voice import config, synthesis
    from demod_voice.audio import concat
    from demod_voice.server.service import Service
    from demod_voice.wyoming import info

    root = tmp_path / "toy"
    (root / "data").mkdir(parents=True)
    config_file = root / "config.yaml"
    config_file.write_text(REGISTRATION + f"paths:\n  data_dir: {root / 'data'}\n  cache_dir: {root / 'cache'}\n")
    cfg = config.load(config_file)
    expected = concat(list(synthesis.synthesize("toy", synthesis.Request(text=TEXT), cfg))).to_pcm16()
    assert len(expected) > 16000  # about a second and a half of buzz

    def cli(*args):
        out = run_cli(*args, "--config", config_file, cwd=root)
        assert out.returncode == 0, out.stderr.decode()
        return out

    cli("say", TEXT, "--engine", "toy", "--no-fallback", "--output", root / "say.wav")
    assert wav_samples((root / "say.wav").read_bytes()) == (16000, expected)

    (root / "jobs.jsonl").write_text(json.dumps({"engine": "toy", "text": TEXT, "output": str(root / "job.wav")}) + "\n")
    cli("batch", root / "jobs.jsonl", "--no-resume")
    assert wav_samples((root / "job.wav").read_bytes()) == (16000, expected)

    health = json.loads(cli("health", "--json").stdout)
    toy = [c for c in health["checks"] if "toy" in c["name"]]
    assert toy and toy[0]["ok"], health["checks"]

    described = info.build(Service(cfg), cfg)
    assert "toy-voice" in [v.name for program in described.tts for v in program.voices]

    proc, url = start_server(root / "server", config_file.read_text() + "server:\n  cache: false\n")
    try:
        reply = httpx.post(url + "/v1/audio/speech", json={"model": "toy", "voice": "toy-voice", "input": TEXT,
                                                           "response_format": "wav"}, timeout=120)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-engine"] == "toy"
        assert wav_samples(reply.content) == (16000, expected)
        engines = httpx.get(url + "/api/engines", timeout=60).json()["engines"]
        assert engines["toy"]["installed"] and engines["toy"]["successes"] == 1
    finally:
        stop_server(proc)

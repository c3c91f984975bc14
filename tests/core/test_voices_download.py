"""Piper voices by name: ``voices available`` / ``voices download`` against a loopback hub.

The hub (tests/xtts/hub_server.py, the hub's protocol over real HTTP) serves a small Piper voices
index and one voice: the bundled Joe voice's files under the repository's nested path of a
lessac-like voice. Then ``piper-infer en_US-lessac-medium`` must speak with it.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

import pytest

from demod_voice import piper_voices
from tests.xtts.hub_server import HubServer

NAME = "en_US-lessac-medium"
FOLDER = "en/en_US/lessac/medium"


def voice_entry(key: str, code: str, files: dict[str, bytes], quality: str = "medium") -> dict:
    return {"key": key, "name": key.split("-")[1], "quality": quality, "num_speakers": 1, "speaker_id_map": {},
            "language": {"code": code, "family": code.split("_")[0], "region": code.split("_")[-1]},
            "files": {path: {"size_bytes": len(data), "md5_digest": hashlib.md5(data).hexdigest()}
                      for path, data in files.items()}, "aliases": []}


@pytest.fixture
def hub(isolated_home, tmp_path, joe_voice):
    onnx = joe_voice.read_bytes()
    config = Path(f"{joe_voice}.json").read_bytes()
    files = {f"{FOLDER}/{NAME}.onnx": onnx, f"{FOLDER}/{NAME}.onnx.json": config,
             f"{FOLDER}/MODEL_CARD": b"# Model card for lessac (test)\n"}
    german = {"de/de_DE/thorsten/low/de_DE-thorsten-low.onnx": b"not served",
              "de/de_DE/thorsten/low/de_DE-thorsten-low.onnx.json": b"{}"}
    index = {NAME: voice_entry(NAME, "en_US", files),
             "de_DE-thorsten-low": voice_entry("de_DE-thorsten-low", "de_DE", german, "low")}
    served = {**files, "voices.json": json.dumps(index).encode()}
    with HubServer(piper_voices.REPO, piper_voices.REVISION, served) as server:
        server.env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf-home"),
                      "HF_HUB_DISABLE_TELEMETRY": "1"}
        server.voices = isolated_home / "data" / "demod-voice" / "voices"
        server.index = index
        yield server


def test_available_lists_the_index_by_language(cli, hub):
    proc = cli("voices", "available", "--language", "en", env=hub.env)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert NAME in out and "thorsten" not in out
    listed = json.loads(cli("voices", "available", "--json", env=hub.env).stdout)
    assert {v["name"] for v in listed} == {NAME, "de_DE-thorsten-low"}
    assert not any(v["installed"] for v in listed)
    # The index is read once at the pinned revision and kept: later listings need no hub.
    gets = len(hub.gets("voices.json"))
    assert cli("voices", "available", env={**hub.env, "HF_ENDPOINT": "http://127.0.0.1:9"}).returncode == 0
    assert len(hub.gets("voices.json")) == gets == 1


def test_download_then_speak_by_name(cli, hub, joe_voice, tmp_path):
    proc = cli("voices", "download", NAME, env=hub.env)
    assert proc.returncode == 0, proc.stderr.decode()
    folder = hub.voices / FOLDER
    for path, data in hub.files.items():
        if path != "voices.json":
            assert (hub.voices / path).read_bytes() == data
    # The sha256 of each file, recorded as its pin once size and md5 matched the index.
    book = json.loads((hub.voices / ".demod-verified.json").read_text())
    assert book[f"{FOLDER}/{NAME}.onnx"]["sha256"] == hashlib.sha256(joe_voice.read_bytes()).hexdigest()

    by_name, by_path = tmp_path / "name.wav", tmp_path / "path.wav"
    assert cli("piper-infer", NAME, "Hello there.", "-o", by_name, "--noise-scale", "0", "--noise-w", "0").returncode == 0
    assert cli("piper-infer", joe_voice, "Hello there.", "-o", by_path, "--noise-scale", "0",
               "--noise-w", "0").returncode == 0
    assert by_name.read_bytes() == by_path.read_bytes()
    listed = json.loads(cli("voices", "list", "--json").stdout)
    assert [v["path"] for v in listed if v["name"] == NAME] == [str(folder / f"{NAME}.onnx")]

    # Downloading again finds every file matching its pin and fetches nothing.
    count = len(hub.requests)
    assert cli("voices", "download", NAME, env=hub.env).returncode == 0
    assert len(hub.requests) == count
    # A file changed on disk no longer matches its pin: it is fetched again.
    (folder / f"{NAME}.onnx.json").write_text("{}")
    assert cli("voices", "download", NAME, env=hub.env).returncode == 0
    assert (folder / f"{NAME}.onnx.json").read_bytes() == hub.files[f"{FOLDER}/{NAME}.onnx.json"]


def test_a_file_that_does_not_match_the_index_is_deleted(cli, hub):
    hub.files[f"{FOLDER}/{NAME}.onnx"] = b"tampered" + hub.files[f"{FOLDER}/{NAME}.onnx"][8:]
    proc = cli("voices", "download", NAME, env=hub.env)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "failed its check" in err and "md5" in err and "Traceback" not in err
    assert not (hub.voices / FOLDER / f"{NAME}.onnx").exists()


def test_unknown_voices_name_the_command_that_gets_them(cli, hub, tmp_path):
    proc = cli("piper-infer", NAME, "Hello.", "-o", tmp_path / "x.wav")
    assert proc.returncode == 2
    assert f"demod-voice voices download {NAME}" in proc.stderr.decode()
    proc = cli("voices", "download", "en_US-lessac-mediun", env=hub.env)
    assert proc.returncode == 2
    assert "has no voice 'en_US-lessac-mediun'" in proc.stderr.decode() and NAME in proc.stderr.decode()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_download_is_one_clear_error(cli, isolated_home, tmp_path):
    folder = isolated_home / "data" / "demod-voice" / "voices" / FOLDER
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_HOME": str(tmp_path / "hf-home")}
    started = time.monotonic()
    proc = cli("voices", "download", NAME, env=env)
    took = time.monotonic() - started
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert f"{NAME}.onnx and {NAME}.onnx.json" in err and str(folder) in err, err
    assert "Traceback" not in err and "Retrying" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 2, err  # the error and its hint, once
    assert took < 60  # no minute of retries (a loose bound: the CPU here is shared)
    proc = cli("voices", "download", NAME, env={**env, "DEMOD_VOICE_OFFLINE": "1"})
    assert proc.returncode == 2 and str(folder) in proc.stderr.decode()


def test_registry_entry_with_nested_paths_and_recursive_voice_search(cli, hub, isolated_home, tmp_path):
    """A models registry entry for a Piper voice at the repository's nested paths pulls (creating the
    folders), and ``paths.voices`` pointing at the model folder finds the voice in its subfolders."""
    files = [{"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
             for path, data in hub.files.items() if path.endswith((".onnx", ".onnx.json"))]
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"lessac": {"kind": "piper", "repo": piper_voices.REPO,
                                               "revision": piper_voices.REVISION, "license": "MIT", "files": files}}))
    models = isolated_home / "data" / "demod-voice" / "models" / "lessac"
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  registry: ['{registry}']\npaths:\n  voices: ['{models}']\n")
    proc = cli("models", "pull", "lessac", "--config", config, env=hub.env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (models / FOLDER / f"{NAME}.onnx").is_file()
    proc = cli("piper-infer", NAME, "Hello.", "-o", tmp_path / "x.wav", "--config", config)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "x.wav").stat().st_size > 1000

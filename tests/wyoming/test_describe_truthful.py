"""Wyoming ``describe`` lists a voice only when its engine can run: packages found and weights present (#34 item 1).

Home Assistant makes an entity of every voice listed, so a cloned voice whose XTTS weights are missing, or
whose packages are absent (the `make demo` environment, no torch), must not appear. Each case builds the real
describe answer (``wyoming.info.build`` over a real ``Service``) in a child process; the no-torch case hides the
heavy packages from the child's import system (tests/nodeps.py), as if they were not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, cli_env
from tests.nodeps import hidden_env
from tests.wyoming.conftest import write_config

DESCRIBE = """
import json, sys
from demod_voice import config
from demod_voice.server.service import Service
from demod_voice.wyoming import info
cfg = config.load(sys.argv[1])
built = info.build(Service(cfg), cfg)
print(json.dumps({"tts": [v.name for p in built.tts for v in p.voices],
                  "asr": [m.name for p in built.asr for m in p.models]}))
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory, speech_wav):
    from demod_voice.voices import VoiceStore

    home = tmp_path_factory.mktemp("describe-home")
    store = VoiceStore(home / "data", "local")
    store.create("narrator", engine="xtts", language="en")
    store.add_sample("narrator", speech_wav)
    store.auto_reference("narrator")
    return home


def _describe(home, config, env) -> dict:
    env = {**env, "XDG_CONFIG_HOME": str(home / "xdg-config")}
    proc = subprocess.run([sys.executable, "-c", DESCRIBE, str(config)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_cloned_voice_is_listed_only_with_its_weights(home, whisper_path, tiny_xtts):
    ready = _describe(home, write_config(home, whisper_path, tiny_xtts), cli_env())
    assert "narrator" in ready["tts"] and "en_US-joe-medium" in ready["tts"]
    assert str(whisper_path) in ready["asr"]
    # the same profile and packages, but no XTTS weights where the config points: not advertised
    (home / "empty-xtts").mkdir(exist_ok=True)
    missing = _describe(home, write_config(home, whisper_path, home / "empty-xtts"), cli_env())
    assert "narrator" not in missing["tts"] and "en_US-joe-medium" in missing["tts"]


def test_without_torch_only_piper_is_described(home, whisper_path, tiny_xtts, tmp_path):
    """Weights all present, packages not: the cloned voice and Whisper are left out, Piper stays."""
    bare = _describe(home, write_config(home, whisper_path, tiny_xtts), hidden_env(tmp_path / "hide"))
    assert "narrator" not in bare["tts"] and "en_US-joe-medium" in bare["tts"]
    assert bare["asr"] == []


def test_a_missing_onnxruntime_hides_piper(home, whisper_path, tiny_xtts, tmp_path):
    """piper-tts alone cannot speak (it runs on onnxruntime): Piper's check is its whole extra, as needs.py says."""
    env = hidden_env(tmp_path / "hide", hidden=("onnxruntime",))
    described = _describe(home, write_config(home, whisper_path, tiny_xtts), env)
    assert "en_US-joe-medium" not in described["tts"]

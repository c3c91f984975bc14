"""Layered config: defaults < user file < --config < env < flags, with precise validation."""

from __future__ import annotations

import json

import pytest
import yaml

from demod_voice import config
from demod_voice.errors import ConfigError


def test_precedence_and_sources(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("piper:\n  volume: 0.5\n  sentence_silence: 0.2\ndevice: cpu\n")
    extra = tmp_path / "extra.yaml"
    extra.write_text("piper:\n  volume: 0.7\n")
    env = {"DEMOD_VOICE_PIPER__SENTENCE_SILENCE": "0.3", "DEMOD_VOICE_SERVER__PORT": "6000"}
    cfg = config.load(extra, flags={"device": "gpu"}, environ=env, user_file=user)
    assert cfg.get("piper.volume") == 0.7 and cfg.source("piper.volume") == str(extra)
    assert cfg.get("piper.sentence_silence") == 0.3 and cfg.source("piper.sentence_silence") == "env DEMOD_VOICE_PIPER__SENTENCE_SILENCE"
    assert cfg.get("server.port") == 6000
    assert cfg.get("device") == "gpu" and cfg.source("device") == "command line"
    # Deep merge: keys the layers did not set keep their defaults.
    assert cfg.get("piper.default_voice") == "en_US-joe-medium" and cfg.source("piper.default_voice") == "default"


def test_user_file_honours_xdg(isolated_home):
    (isolated_home / "config" / "demod-voice").mkdir(parents=True)
    (isolated_home / "config" / "demod-voice" / "config.yaml").write_text("output:\n  format: flac\n")
    cfg = config.load(environ={})
    assert cfg.get("output.format") == "flac"


@pytest.mark.parametrize("text,needles", [
    ("piper:\n  volume: loud\n", ["piper.volume", "a number", "'loud'"]),
    ("piper:\n  volume: 99\n", ["piper.volume", "<= 10.0", "99"]),
    ("device: tpu\n", ["device", "one of auto, cpu, gpu", "'tpu'"]),
    ("piper:\n  lenght_scale: 1\n", ["unknown config key 'piper.lenght_scale'"]),
    ("server:\n  port: '80'\n", ["server.port", "an integer"]),
    ("- a\n- b\n", ["must hold a mapping"]),
    ("piper: [\n", ["not valid YAML", "line"]),
])
def test_validation_messages(tmp_path, text, needles):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(f, environ={}, user_file=tmp_path / "none.yaml")
    message = str(info.value)
    for needle in needles:
        assert needle in message
    if "unknown" in needles[0]:
        assert "did you mean 'piper.length_scale'" in message


def test_config_show_validate_init(cli, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("piper:\n  volume: 0.9\n")
    show = cli("--config", f, "config", "show", "--json", env={"DEMOD_VOICE_DEVICE": "cpu"})
    assert show.returncode == 0, show.stderr
    data = json.loads(show.stdout)
    assert data["piper.volume"] == {"value": 0.9, "source": str(f)}
    assert data["device"] == {"value": "cpu", "source": "env DEMOD_VOICE_DEVICE"}
    table = cli("--cpu", "config", "show").stdout.decode()
    assert "device" in table and "command line" in table

    assert cli("config", "validate", f).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("xtts:\n  top_k: 0\n")
    proc = cli("config", "validate", bad)
    assert proc.returncode == 2 and "xtts.top_k" in proc.stderr.decode()

    target = tmp_path / "init.yaml"
    assert cli("config", "init", "--path", target).returncode == 0
    body = target.read_text()
    assert "# piper:" in body and "length_scale" in body
    assert yaml.safe_load(body) is None  # everything is commented out
    assert cli("config", "validate", target).returncode == 0
    again = cli("config", "init", "--path", target)
    assert again.returncode == 2 and "--force" in again.stderr.decode()


def test_example_yaml_uncommented_is_valid(tmp_path):
    """Uncommenting every line of the example gives a valid config of the defaults."""
    lines = []
    for line in config.example_yaml().splitlines():
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith("# ") and ":" in stripped and not stripped[2:].startswith(("demod", "Precedence")):
            candidate = stripped[2:]
            key = candidate.split(":", 1)[0]
            if key.replace("_", "").isalnum():
                lines.append(indent + candidate)
    f = tmp_path / "full.yaml"
    f.write_text("\n".join(lines) + "\n")
    assert config.validate_file(f)
